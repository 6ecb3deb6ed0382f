-- EV data: vehicles, methodology versions, trip and charging-session imports, trips, charging
-- sessions, stored CO₂ calculations and the per-day aggregates the dashboard reads.

CREATE TABLE vehicles (
    id                        uuid PRIMARY KEY,
    owner_id                  uuid NOT NULL REFERENCES users (id),
    make                      text NOT NULL CHECK (length(make) BETWEEN 1 AND 60),
    model                     text NOT NULL CHECK (length(model) BETWEEN 1 AND 60),
    year                      integer NOT NULL CHECK (year BETWEEN 1990 AND 2100),
    vin                       text NOT NULL CHECK (vin ~ '^[A-HJ-NPR-Z0-9]{11,17}$'),
    plate                     text NOT NULL CHECK (length(plate) BETWEEN 2 AND 15),
    battery_kwh               numeric(7, 2) NOT NULL CHECK (battery_kwh > 0 AND battery_kwh <= 500),
    efficiency_kwh_per_100km  numeric(6, 2) NOT NULL CHECK (efficiency_kwh_per_100km > 0 AND efficiency_kwh_per_100km <= 100),
    grid_region               text NOT NULL CHECK (grid_region ~ '^[A-Z0-9-]{2,10}$'),
    time_zone                 text NOT NULL,
    archived_at               timestamptz,
    created_at                timestamptz NOT NULL DEFAULT now(),
    updated_at                timestamptz NOT NULL DEFAULT now(),
    -- A car is registered once on the whole platform, archived or not.
    CONSTRAINT vehicles_vin_key UNIQUE (vin)
);
CREATE INDEX vehicles_owner_idx ON vehicles (owner_id, created_at);

-- Methodology parameter sets: new versions are added, never edited.
CREATE TABLE methodology_versions (
    id            uuid PRIMARY KEY,
    code          text NOT NULL CHECK (code IN ('SEED-2025', 'ENERGY-2025')),
    version       integer NOT NULL CHECK (version >= 1),
    methodology   jsonb NOT NULL,
    note          text NOT NULL DEFAULT '',
    created_by    uuid REFERENCES users (id),
    created_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT methodology_versions_code_version_key UNIQUE (code, version)
);
CREATE TRIGGER methodology_versions_append_only BEFORE UPDATE OR DELETE ON methodology_versions
    FOR EACH ROW EXECUTE FUNCTION forbid_change();

-- Which version new calculations use: exactly one row.
CREATE TABLE methodology_active (
    singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    version_id  uuid NOT NULL REFERENCES methodology_versions (id),
    changed_by  uuid REFERENCES users (id),
    changed_at  timestamptz NOT NULL DEFAULT now()
);

-- One uploaded file. Its rows are imported all together or not at all.
CREATE TABLE data_imports (
    id              uuid PRIMARY KEY,
    owner_id        uuid NOT NULL REFERENCES users (id),
    vehicle_id      uuid NOT NULL REFERENCES vehicles (id),
    kind            text NOT NULL CHECK (kind IN ('trips', 'charging')),
    file_name       text NOT NULL,
    file_bytes      bigint NOT NULL CHECK (file_bytes >= 0),
    file_sha256     bytea NOT NULL,
    format          text NOT NULL,
    rows_total      integer NOT NULL CHECK (rows_total >= 0),
    rows_imported   integer NOT NULL CHECK (rows_imported >= 0),
    rows_duplicate  integer NOT NULL CHECK (rows_duplicate >= 0),
    rows_rejected   integer NOT NULL CHECK (rows_rejected >= 0),
    rows_flagged    integer NOT NULL CHECK (rows_flagged >= 0),
    avoided_kg      numeric NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (rows_imported + rows_rejected = rows_total),
    CHECK (rows_duplicate <= rows_rejected)
);
CREATE INDEX data_imports_owner_idx ON data_imports (owner_id, created_at DESC);
CREATE INDEX data_imports_sha_idx ON data_imports (vehicle_id, file_sha256);

CREATE TABLE import_rejections (
    import_id   uuid NOT NULL REFERENCES data_imports (id) ON DELETE CASCADE,
    line        integer NOT NULL CHECK (line >= 1),
    reason      text NOT NULL,
    PRIMARY KEY (import_id, line)
);

-- A CO₂ calculation: the methodology version and the vehicle inputs it used, and its result,
-- so that it can be redone exactly from the rows that reference it.
CREATE TABLE co2_calculations (
    id                        uuid PRIMARY KEY,
    methodology_version_id    uuid NOT NULL REFERENCES methodology_versions (id),
    vehicle_id                uuid NOT NULL REFERENCES vehicles (id),
    efficiency_kwh_per_100km  numeric NOT NULL,
    grid_region               text NOT NULL,
    trips                     integer NOT NULL CHECK (trips >= 0),
    distance_km               numeric NOT NULL,
    baseline_kg               numeric NOT NULL,
    project_kg                numeric NOT NULL,
    avoided_kg                numeric NOT NULL CHECK (avoided_kg >= 0),
    created_at                timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE trips (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    vehicle_id         uuid NOT NULL REFERENCES vehicles (id),
    import_id          uuid REFERENCES data_imports (id),
    line               integer,
    start_time         timestamptz NOT NULL,
    end_time           timestamptz NOT NULL,
    distance_km        numeric(10, 3) NOT NULL CHECK (distance_km > 0),
    energy_kwh         numeric(10, 3) CHECK (energy_kwh >= 0),
    start_lat          numeric(9, 6) CHECK (start_lat BETWEEN -90 AND 90),
    start_lng          numeric(9, 6) CHECK (start_lng BETWEEN -180 AND 180),
    end_lat            numeric(9, 6) CHECK (end_lat BETWEEN -90 AND 90),
    end_lng            numeric(9, 6) CHECK (end_lng BETWEEN -180 AND 180),
    odometer_start_km  numeric(10, 1) CHECK (odometer_start_km >= 0),
    odometer_end_km    numeric(10, 1) CHECK (odometer_end_km >= 0),
    notes              text CHECK (length(notes) <= 500),
    flags              text[] NOT NULL DEFAULT '{}',
    calculation_id     uuid NOT NULL REFERENCES co2_calculations (id),
    avoided_kg         numeric NOT NULL CHECK (avoided_kg >= 0),
    -- Set while the trip is inside a pending or approved credit request.
    claim_id           uuid,
    created_at         timestamptz NOT NULL DEFAULT now(),
    CHECK (end_time > start_time),
    CONSTRAINT trips_vehicle_start_key UNIQUE (vehicle_id, start_time)
);
CREATE INDEX trips_vehicle_end_idx ON trips (vehicle_id, end_time);

CREATE TABLE charging_sessions (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    vehicle_id   uuid NOT NULL REFERENCES vehicles (id),
    import_id    uuid REFERENCES data_imports (id),
    line         integer,
    session_id   text NOT NULL CHECK (length(session_id) BETWEEN 1 AND 100),
    charger_id   text NOT NULL CHECK (length(charger_id) BETWEEN 1 AND 100),
    start_time   timestamptz NOT NULL,
    end_time     timestamptz NOT NULL,
    energy_kwh   numeric(10, 3) NOT NULL CHECK (energy_kwh > 0),
    claim_id     uuid,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CHECK (end_time > start_time),
    -- A charger operator's session is imported once, on the whole platform.
    CONSTRAINT charging_sessions_session_key UNIQUE (session_id)
);
CREATE INDEX charging_sessions_vehicle_idx ON charging_sessions (vehicle_id, start_time);

-- Claimed trips and sessions are read-only: only their claim may change.
CREATE FUNCTION protect_claimed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.claim_id IS NOT NULL THEN
        IF TG_OP = 'DELETE' OR (to_jsonb(NEW) - 'claim_id') IS DISTINCT FROM (to_jsonb(OLD) - 'claim_id') THEN
            RAISE EXCEPTION '% % is claimed by a credit request and cannot change', TG_TABLE_NAME, OLD.id
                USING ERRCODE = 'restrict_violation', CONSTRAINT = 'claimed_read_only';
        END IF;
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER trips_protect_claimed BEFORE UPDATE OR DELETE ON trips
    FOR EACH ROW EXECUTE FUNCTION protect_claimed();
CREATE TRIGGER charging_sessions_protect_claimed BEFORE UPDATE OR DELETE ON charging_sessions
    FOR EACH ROW EXECUTE FUNCTION protect_claimed();

-- Per vehicle and local calendar day: what the dashboard charts. Kept in the same
-- transaction as every change to trips.
CREATE TABLE trip_days (
    vehicle_id   uuid NOT NULL REFERENCES vehicles (id),
    day          date NOT NULL,
    trips        integer NOT NULL CHECK (trips >= 0),
    distance_km  numeric NOT NULL CHECK (distance_km >= 0),
    energy_kwh   numeric NOT NULL CHECK (energy_kwh >= 0),
    avoided_kg   numeric NOT NULL CHECK (avoided_kg >= 0),
    PRIMARY KEY (vehicle_id, day)
);
