-- A million-row import spent most of its time in per-row foreign-key checks (three lookups per
-- trip, run one by one after COPY). The same guarantee, set-based: one check per statement
-- over the distinct references of the rows it wrote, and the referenced rows can never be
-- deleted, so a reference that was valid stays valid.

ALTER TABLE trips DROP CONSTRAINT trips_vehicle_id_fkey;
ALTER TABLE trips DROP CONSTRAINT trips_import_id_fkey;
ALTER TABLE trips DROP CONSTRAINT trips_calculation_id_fkey;
-- Overlap checks use the (vehicle_id, start_time) index: stored trips never overlap, so the
-- last trip starting before a time is the only earlier one that can reach past it. This index
-- cost a sixth of an import's time and answered nothing the other cannot.
DROP INDEX trips_vehicle_end_idx;

CREATE FUNCTION trips_references_exist() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    missing text;
BEGIN
    SELECT CASE
               WHEN NOT EXISTS (SELECT 1 FROM vehicles v WHERE v.id = r.vehicle_id) THEN 'vehicle ' || r.vehicle_id
               WHEN r.import_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM data_imports d WHERE d.id = r.import_id)
                   THEN 'import ' || r.import_id
               WHEN NOT EXISTS (SELECT 1 FROM co2_calculations c WHERE c.id = r.calculation_id)
                   THEN 'calculation ' || r.calculation_id
           END
      INTO missing
      FROM (SELECT DISTINCT vehicle_id, import_id, calculation_id FROM written) r
     WHERE NOT EXISTS (SELECT 1 FROM vehicles v WHERE v.id = r.vehicle_id)
        OR (r.import_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM data_imports d WHERE d.id = r.import_id))
        OR NOT EXISTS (SELECT 1 FROM co2_calculations c WHERE c.id = r.calculation_id)
     LIMIT 1;
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'trips refer to a % that does not exist', missing
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'trips_references_exist';
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER trips_references_exist_insert AFTER INSERT ON trips
    REFERENCING NEW TABLE AS written FOR EACH STATEMENT EXECUTE FUNCTION trips_references_exist();
CREATE TRIGGER trips_references_exist_update AFTER UPDATE ON trips
    REFERENCING NEW TABLE AS written FOR EACH STATEMENT EXECUTE FUNCTION trips_references_exist();

-- What trips refer to is never deleted (vehicles are archived instead).
CREATE FUNCTION forbid_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% rows are never deleted', TG_TABLE_NAME USING ERRCODE = 'restrict_violation';
END;
$$;
CREATE TRIGGER vehicles_never_deleted BEFORE DELETE ON vehicles
    FOR EACH ROW EXECUTE FUNCTION forbid_delete();
CREATE TRIGGER data_imports_never_deleted BEFORE DELETE ON data_imports
    FOR EACH ROW EXECUTE FUNCTION forbid_delete();
CREATE TRIGGER co2_calculations_never_deleted BEFORE DELETE ON co2_calculations
    FOR EACH ROW EXECUTE FUNCTION forbid_delete();
CREATE TRIGGER vehicles_no_truncate BEFORE TRUNCATE ON vehicles
    FOR EACH STATEMENT EXECUTE FUNCTION forbid_delete();
CREATE TRIGGER data_imports_no_truncate BEFORE TRUNCATE ON data_imports
    FOR EACH STATEMENT EXECUTE FUNCTION forbid_delete();
CREATE TRIGGER co2_calculations_no_truncate BEFORE TRUNCATE ON co2_calculations
    FOR EACH STATEMENT EXECUTE FUNCTION forbid_delete();
