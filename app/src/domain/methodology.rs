//! The CO₂ methodology engine: named, versioned parameter sets, the calculation of
//! baseline, project and avoided emissions for one trip (with a step-by-step explanation a
//! verifier can redo by hand), sums over many trips, and the issuance rule that turns avoided
//! kilograms into credits and a buffer-pool share. Exact decimal arithmetic throughout.

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Which published methodology a parameter set belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum MethodologyCode {
    /// Flat per-kilometre factors for a combustion baseline and an EV.
    #[serde(rename = "SEED-2025")]
    Seed2025,
    /// Fuel-based baseline against grid electricity actually (or estimably) used.
    #[serde(rename = "ENERGY-2025")]
    Energy2025,
}

impl MethodologyCode {
    pub const ALL: [MethodologyCode; 2] = [MethodologyCode::Seed2025, MethodologyCode::Energy2025];

    /// The value stored in the database and shown to people.
    pub fn as_str(self) -> &'static str {
        match self {
            MethodologyCode::Seed2025 => "SEED-2025",
            MethodologyCode::Energy2025 => "ENERGY-2025",
        }
    }

    pub fn parse(s: &str) -> Result<MethodologyCode, String> {
        let wanted = s.trim();
        MethodologyCode::ALL
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| {
                format!("“{s}” is not a methodology (expected SEED-2025 or ENERGY-2025).")
            })
    }
}

impl fmt::Display for MethodologyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// SEED-2025: grams of CO₂ per kilometre for the combustion car the EV replaces and for the EV.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeedParams {
    pub baseline_g_per_km: Decimal,
    pub ev_g_per_km: Decimal,
}

impl Default for SeedParams {
    fn default() -> Self {
        SeedParams {
            baseline_g_per_km: Decimal::new(120, 0),
            ev_g_per_km: Decimal::new(20, 0),
        }
    }
}

/// ENERGY-2025: fuel the baseline car would have burnt against the grid electricity the EV used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnergyParams {
    /// Fuel consumption of the baseline car.
    pub baseline_l_per_100km: Decimal,
    /// Emission factor of the fuel (gasoline by default).
    pub fuel_kg_co2_per_l: Decimal,
    /// Grid emission factor per region code (e.g. "VN").
    pub grid_kg_co2_per_kwh: BTreeMap<String, Decimal>,
    /// Transmission and charging losses on top of the energy measured at the car, 0 ≤ x < 1.
    pub losses_share: Decimal,
}

impl Default for EnergyParams {
    fn default() -> Self {
        EnergyParams {
            baseline_l_per_100km: Decimal::new(70, 1),
            fuel_kg_co2_per_l: Decimal::new(2348, 3),
            grid_kg_co2_per_kwh: BTreeMap::from([("VN".to_owned(), Decimal::new(6592, 4))]),
            losses_share: Decimal::new(8, 2),
        }
    }
}

/// The parameters of one methodology version; stored as JSON tagged by `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Params {
    Seed(SeedParams),
    Energy(EnergyParams),
}

/// A named, versioned parameter set. A calculation records its code and version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Methodology {
    pub code: MethodologyCode,
    pub version: i32,
    pub params: Params,
    /// Share of every issuance set aside in the buffer pool, 0 ≤ x ≤ 0.5.
    pub buffer_share: Decimal,
}

/// What one trip contributes to a calculation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TripInput {
    pub distance_km: Decimal,
    /// Energy metered for the trip, if the data source has it.
    pub measured_energy_kwh: Option<Decimal>,
    /// The vehicle's rated consumption, used when nothing was measured.
    pub efficiency_kwh_per_100km: Decimal,
    /// Grid region code, e.g. "VN".
    pub region: String,
}

/// Where the electricity figure of a calculation came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnergySource {
    Measured,
    Estimated,
    /// The methodology does not use energy (SEED-2025).
    NotUsed,
}

/// One line of the explanation a verifier reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub label: String,
    pub formula: String,
    pub value: String,
}

/// The result of one trip under one methodology version, at full precision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calculation {
    pub code: MethodologyCode,
    pub version: i32,
    pub baseline_kg: Decimal,
    pub project_kg: Decimal,
    pub avoided_kg: Decimal,
    /// Zero when the methodology does not use energy.
    pub energy_kwh: Decimal,
    pub energy_source: EnergySource,
    pub steps: Vec<Step>,
}

/// The numbers of a calculation, without its explanation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Figures {
    pub baseline_kg: Decimal,
    pub project_kg: Decimal,
    pub avoided_kg: Decimal,
    pub energy_kwh: Decimal,
    pub energy_source: EnergySource,
}

/// Sums over many calculations.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    pub baseline_kg: Decimal,
    pub project_kg: Decimal,
    pub avoided_kg: Decimal,
    pub trips: u64,
}

/// How avoided emissions become credits: whole kilograms, a buffer share, the rest to the owner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Issuance {
    pub gross_kg: Decimal,
    pub buffer_kg: Decimal,
    pub net_kg: Decimal,
}

impl Methodology {
    /// SEED-2025 version 1 with its published defaults.
    pub fn seed_default() -> Methodology {
        Methodology {
            code: MethodologyCode::Seed2025,
            version: 1,
            params: Params::Seed(SeedParams::default()),
            buffer_share: Decimal::new(5, 2),
        }
    }

    /// ENERGY-2025 version 1 with its published defaults.
    pub fn energy_default() -> Methodology {
        Methodology {
            code: MethodologyCode::Energy2025,
            version: 1,
            params: Params::Energy(EnergyParams::default()),
            buffer_share: Decimal::new(5, 2),
        }
    }

    /// "ENERGY-2025 v3".
    fn name(&self) -> String {
        format!("{} v{}", self.code, self.version)
    }

    /// Every problem with the parameter set, as (field, message) pairs.
    pub fn validate(&self) -> Result<(), Vec<(String, String)>> {
        let mut errors: Vec<(String, String)> = Vec::new();
        let mut err = |field: &str, message: String| errors.push((field.to_owned(), message));

        if self.version < 1 {
            err(
                "version",
                format!("The version must be 1 or higher (it is {}).", self.version),
            );
        }
        if self.buffer_share < Decimal::ZERO || self.buffer_share > Decimal::new(5, 1) {
            err(
                "buffer_share",
                format!(
                    "The buffer share must be between 0 and 0.5 (50 %); it is {}.",
                    self.buffer_share
                ),
            );
        }
        match (&self.params, self.code) {
            (Params::Seed(p), MethodologyCode::Seed2025) => {
                if p.baseline_g_per_km <= Decimal::ZERO {
                    err(
                        "baseline_g_per_km",
                        format!(
                            "The baseline emission factor must be greater than 0 g/km (it is {}).",
                            p.baseline_g_per_km
                        ),
                    );
                }
                if p.ev_g_per_km <= Decimal::ZERO {
                    err(
                        "ev_g_per_km",
                        format!(
                            "The EV emission factor must be greater than 0 g/km (it is {}).",
                            p.ev_g_per_km
                        ),
                    );
                } else if p.ev_g_per_km >= p.baseline_g_per_km {
                    err(
                        "ev_g_per_km",
                        format!(
                            "The EV emission factor must be lower than the baseline ({} g/km).",
                            p.baseline_g_per_km
                        ),
                    );
                }
            }
            (Params::Energy(p), MethodologyCode::Energy2025) => {
                if p.baseline_l_per_100km <= Decimal::ZERO {
                    err(
                        "baseline_l_per_100km",
                        format!(
                            "The baseline fuel consumption must be greater than 0 L/100 km (it is {}).",
                            p.baseline_l_per_100km
                        ),
                    );
                }
                if p.fuel_kg_co2_per_l <= Decimal::ZERO {
                    err(
                        "fuel_kg_co2_per_l",
                        format!(
                            "The fuel emission factor must be greater than 0 kg CO₂/L (it is {}).",
                            p.fuel_kg_co2_per_l
                        ),
                    );
                }
                if p.losses_share < Decimal::ZERO || p.losses_share >= Decimal::ONE {
                    err(
                        "losses_share",
                        format!(
                            "Transmission and charging losses must be at least 0 and below 1 (100 %); they are {}.",
                            p.losses_share
                        ),
                    );
                }
                if p.grid_kg_co2_per_kwh.is_empty() {
                    err(
                        "grid_kg_co2_per_kwh",
                        "Add at least one grid region with its emission factor.".to_owned(),
                    );
                }
                for (region, factor) in &p.grid_kg_co2_per_kwh {
                    if !valid_region_code(region) {
                        err(
                            "grid_kg_co2_per_kwh",
                            format!(
                                "The region code “{region}” must be 2–10 characters of A–Z, 0–9 and “-”."
                            ),
                        );
                    }
                    if *factor <= Decimal::ZERO {
                        err(
                            "grid_kg_co2_per_kwh",
                            format!(
                                "The grid emission factor for {region} must be greater than 0 kg CO₂/kWh (it is {factor})."
                            ),
                        );
                    }
                }
            }
            (_, code) => err(
                "params",
                format!("{code} needs {} parameters.", params_kind_for(code)),
            ),
        }

        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// Emissions of one trip, with every step written out. Decimal fields keep full precision;
    /// only the display strings are rounded.
    pub fn calculate(&self, input: &TripInput) -> Result<Calculation, String> {
        let f = self.figures(input)?;
        let d = input.distance_km;
        let steps = match &self.params {
            Params::Seed(p) => vec![
                step(
                    "Baseline emissions",
                    format!(
                        "{} km × {} g/km ÷ 1,000 g/kg",
                        group(d),
                        group(p.baseline_g_per_km)
                    ),
                    kg(f.baseline_kg),
                ),
                step(
                    "Project emissions",
                    format!(
                        "{} km × {} g/km ÷ 1,000 g/kg",
                        group(d),
                        group(p.ev_g_per_km)
                    ),
                    kg(f.project_kg),
                ),
                step(
                    "Avoided emissions",
                    format!("{} − {}", kg(f.baseline_kg), kg(f.project_kg)),
                    kg(f.avoided_kg),
                ),
            ],
            Params::Energy(p) => {
                let region = normalized_region(&input.region);
                // `figures` succeeded, so the region has a factor.
                let grid = p
                    .grid_kg_co2_per_kwh
                    .get(region.as_ref())
                    .copied()
                    .unwrap_or_default();
                let (energy_step, energy_shown) = match f.energy_source {
                    EnergySource::Measured => (
                        step(
                            "Electricity used (measured)",
                            "metered for this trip".to_owned(),
                            format!("{} kWh", group(f.energy_kwh)),
                        ),
                        group(f.energy_kwh),
                    ),
                    _ => (
                        step(
                            "Electricity used (estimated)",
                            format!(
                                "{} km × {} kWh/100 km",
                                group(d),
                                group(input.efficiency_kwh_per_100km)
                            ),
                            format!("{} kWh", group(round3(f.energy_kwh))),
                        ),
                        group(round3(f.energy_kwh)),
                    ),
                };
                let avoided_formula = if f.baseline_kg < f.project_kg {
                    format!(
                        "max(0, {} − {}): the trip emitted more than the baseline",
                        kg(f.baseline_kg),
                        kg(f.project_kg)
                    )
                } else {
                    format!("{} − {}", kg(f.baseline_kg), kg(f.project_kg))
                };
                vec![
                    step(
                        "Baseline emissions",
                        format!(
                            "{} km × {} L/100 km × {} kg/L",
                            group(d),
                            group(p.baseline_l_per_100km),
                            group(p.fuel_kg_co2_per_l)
                        ),
                        kg(f.baseline_kg),
                    ),
                    energy_step,
                    step(
                        "Project emissions",
                        format!(
                            "{energy_shown} kWh × {} kg/kWh ({region} grid) × (1 + {} losses)",
                            group(grid),
                            group(p.losses_share)
                        ),
                        kg(f.project_kg),
                    ),
                    step("Avoided emissions", avoided_formula, kg(f.avoided_kg)),
                ]
            }
        };
        Ok(Calculation {
            code: self.code,
            version: self.version,
            baseline_kg: f.baseline_kg,
            project_kg: f.project_kg,
            avoided_kg: f.avoided_kg,
            energy_kwh: f.energy_kwh,
            energy_source: f.energy_source,
            steps,
        })
    }

    /// The figures of `calculate` without the explanation: what an import of a million trips
    /// needs, without formatting a single string.
    pub fn figures(&self, input: &TripInput) -> Result<Figures, String> {
        let d = input.distance_km;
        match (&self.params, self.code) {
            (Params::Seed(p), MethodologyCode::Seed2025) => {
                let thousand = Decimal::new(1000, 0);
                let baseline = d * p.baseline_g_per_km / thousand;
                let project = d * p.ev_g_per_km / thousand;
                Ok(Figures {
                    baseline_kg: baseline,
                    project_kg: project,
                    avoided_kg: baseline - project,
                    energy_kwh: Decimal::ZERO,
                    energy_source: EnergySource::NotUsed,
                })
            }
            (Params::Energy(p), MethodologyCode::Energy2025) => {
                let region = normalized_region(&input.region);
                let Some(grid) = p.grid_kg_co2_per_kwh.get(region.as_ref()).copied() else {
                    return Err(format!(
                        "No grid emission factor for region {region} in {}.",
                        self.name()
                    ));
                };
                let hundred = Decimal::new(100, 0);
                let baseline = d * p.baseline_l_per_100km / hundred * p.fuel_kg_co2_per_l;
                let (energy, source) = match input.measured_energy_kwh {
                    Some(e) => (e, EnergySource::Measured),
                    None => (
                        d * input.efficiency_kwh_per_100km / hundred,
                        EnergySource::Estimated,
                    ),
                };
                let project = energy * grid * (Decimal::ONE + p.losses_share);
                Ok(Figures {
                    baseline_kg: baseline,
                    project_kg: project,
                    avoided_kg: (baseline - project).max(Decimal::ZERO),
                    energy_kwh: energy,
                    energy_source: source,
                })
            }
            (_, code) => Err(format!(
                "{} is misconfigured: {code} needs {} parameters.",
                self.name(),
                params_kind_for(code)
            )),
        }
    }

    /// Avoided kilograms → gross whole kilograms (rounded down), the buffer's share (rounded
    /// up, so the pool never gets less than its share) and the net for the owner.
    pub fn issuance(&self, avoided_kg: Decimal) -> Issuance {
        let gross = avoided_kg.max(Decimal::ZERO).floor();
        let buffer = (gross * self.buffer_share).ceil().min(gross);
        Issuance {
            gross_kg: gross,
            buffer_kg: buffer,
            net_kg: gross - buffer,
        }
    }
}

/// Sums baseline, project and avoided kilograms over many calculations.
pub fn total<'a>(calcs: impl IntoIterator<Item = &'a Calculation>) -> Totals {
    calcs.into_iter().fold(Totals::default(), |mut t, c| {
        t.baseline_kg += c.baseline_kg;
        t.project_kg += c.project_kg;
        t.avoided_kg += c.avoided_kg;
        t.trips += 1;
        t
    })
}

/// What one vehicle's trips in a request's period add up to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeriodInput {
    pub trips: u64,
    pub distance_km: Decimal,
    /// Σ of the trips' energy: metered where the trip has it, estimated from distance where not.
    pub trip_energy_kwh: Decimal,
    /// How many of the trips had metered energy.
    pub measured_trips: u64,
    /// Σ of the charging sessions in the period and how many there were (none: 0, 0).
    pub charging_kwh: Decimal,
    pub charging_sessions: u64,
    pub region: String,
}

impl Methodology {
    /// The calculation over a period: the trip formula applied to the period's sums. With
    /// ENERGY-2025 the electricity is the larger of the trips' figures and the metered charging
    /// sessions (conservative: an incomplete charging export never lowers it). Steps are
    /// labelled with `label` (e.g. the vehicle's plate).
    pub fn period(&self, input: &PeriodInput, label: &str) -> Result<Calculation, String> {
        let uses_energy = matches!(self.params, Params::Energy(_));
        let (energy, note) = if !uses_energy {
            (None, None)
        } else if input.charging_sessions > 0 && input.charging_kwh >= input.trip_energy_kwh {
            (
                Some(input.charging_kwh),
                Some(format!(
                    "metered charging {} kWh ({} session{}) ≥ trip figures {} kWh: the metered energy is used",
                    group(round3(input.charging_kwh)),
                    input.charging_sessions,
                    if input.charging_sessions == 1 { "" } else { "s" },
                    group(round3(input.trip_energy_kwh))
                )),
            )
        } else if input.charging_sessions > 0 {
            (
                Some(input.trip_energy_kwh),
                Some(format!(
                    "trip figures {} kWh > metered charging {} kWh ({} session{}): the larger is used",
                    group(round3(input.trip_energy_kwh)),
                    group(round3(input.charging_kwh)),
                    input.charging_sessions,
                    if input.charging_sessions == 1 { "" } else { "s" },
                )),
            )
        } else {
            (
                Some(input.trip_energy_kwh),
                Some(format!(
                    "{} of {} trips metered, the rest estimated from distance; no charging sessions",
                    input.measured_trips, input.trips
                )),
            )
        };
        let mut calc = self.calculate(&TripInput {
            distance_km: input.distance_km.normalize(),
            measured_energy_kwh: energy,
            efficiency_kwh_per_100km: Decimal::ZERO,
            region: input.region.clone(),
        })?;
        for step in &mut calc.steps {
            step.label = format!("{label}: {}", step.label.to_lowercase());
            if step.label.ends_with("electricity used (measured)") {
                step.label = format!("{label}: electricity used");
                step.formula = note.clone().unwrap_or_default();
            }
        }
        calc.steps.insert(
            0,
            Step {
                label: format!("{label}: distance"),
                formula: format!(
                    "{} trip{}",
                    input.trips,
                    if input.trips == 1 { "" } else { "s" }
                ),
                value: format!("{} km", group(input.distance_km.normalize())),
            },
        );
        calc.energy_source = if !uses_energy {
            EnergySource::NotUsed
        } else if input.charging_sessions > 0 && input.charging_kwh >= input.trip_energy_kwh {
            EnergySource::Measured
        } else if input.measured_trips == input.trips {
            EnergySource::Measured
        } else {
            EnergySource::Estimated
        };
        Ok(calc)
    }
}

/// Kilograms → credits (tonnes of CO₂) with exactly 3 decimals; a fraction of a kilogram is
/// dropped, never rounded up.
pub fn kg_to_credits(kg: Decimal) -> Decimal {
    let mut credits =
        (kg / Decimal::new(1000, 0)).round_dp_with_strategy(3, RoundingStrategy::ToZero);
    credits.rescale(3);
    credits
}

fn params_kind_for(code: MethodologyCode) -> &'static str {
    match code {
        MethodologyCode::Seed2025 => "seed (g/km)",
        MethodologyCode::Energy2025 => "energy (fuel and grid)",
    }
}

fn valid_region_code(code: &str) -> bool {
    (2..=10).contains(&code.len())
        && code
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-')
}

/// A region code as the parameter sets key it: trimmed, upper case (borrowed when it already is).
fn normalized_region(region: &str) -> std::borrow::Cow<'_, str> {
    let trimmed = region.trim();
    if trimmed.bytes().any(|b| b.is_ascii_lowercase()) {
        std::borrow::Cow::Owned(trimmed.to_ascii_uppercase())
    } else {
        std::borrow::Cow::Borrowed(trimmed)
    }
}

fn step(label: &str, formula: String, value: String) -> Step {
    Step {
        label: label.to_owned(),
        formula,
        value,
    }
}

fn round3(d: Decimal) -> Decimal {
    let mut r = d.round_dp_with_strategy(3, RoundingStrategy::MidpointAwayFromZero);
    r.rescale(3);
    r
}

/// "164.360 kg": kilograms are always shown with 3 decimals.
fn kg(d: Decimal) -> String {
    format!("{} kg", group(round3(d)))
}

/// A decimal as written, with thousands separators in the whole part: 12345.60 → "12,345.60".
pub(crate) fn group(d: Decimal) -> String {
    let s = d.to_string();
    let (sign, digits) = match s.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", s.as_str()),
    };
    let (whole, frac) = match digits.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (digits, None),
    };
    let mut out = String::with_capacity(s.len() + whole.len() / 3);
    out.push_str(sign);
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if let Some(f) = frac {
        out.push('.');
        out.push_str(f);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str_exact(s).unwrap()
    }

    fn trip(distance: &str, measured: Option<&str>, efficiency: &str, region: &str) -> TripInput {
        TripInput {
            distance_km: dec(distance),
            measured_energy_kwh: measured.map(dec),
            efficiency_kwh_per_100km: dec(efficiency),
            region: region.to_owned(),
        }
    }

    fn energy_params(m: &mut Methodology) -> &mut EnergyParams {
        match &mut m.params {
            Params::Energy(p) => p,
            Params::Seed(_) => panic!("expected energy parameters"),
        }
    }

    fn seed_params(m: &mut Methodology) -> &mut SeedParams {
        match &mut m.params {
            Params::Seed(p) => p,
            Params::Energy(_) => panic!("expected seed parameters"),
        }
    }

    fn fields(m: &Methodology) -> Vec<String> {
        m.validate()
            .unwrap_err()
            .into_iter()
            .map(|(f, _)| f)
            .collect()
    }

    #[test]
    fn codes_round_trip() {
        for c in MethodologyCode::ALL {
            assert_eq!(MethodologyCode::parse(c.as_str()).unwrap(), c);
        }
        assert_eq!(
            MethodologyCode::parse(" energy-2025 ").unwrap(),
            MethodologyCode::Energy2025
        );
        assert!(MethodologyCode::parse("SEED-2024").is_err());
        assert_eq!(
            serde_json::to_string(&MethodologyCode::Seed2025).unwrap(),
            "\"SEED-2025\""
        );
    }

    #[test]
    fn seed_1000_km() {
        // 1,000 km × 120 g/km ÷ 1,000 = 120 kg; 1,000 × 20 ÷ 1,000 = 20 kg; 120 − 20 = 100 kg.
        let m = Methodology::seed_default();
        let c = m.calculate(&trip("1000", None, "16", "VN")).unwrap();
        assert_eq!(c.code, MethodologyCode::Seed2025);
        assert_eq!(c.version, 1);
        assert_eq!(c.baseline_kg, dec("120"));
        assert_eq!(c.project_kg, dec("20"));
        assert_eq!(c.avoided_kg, dec("100"));
        assert_eq!(c.energy_kwh, Decimal::ZERO);
        assert_eq!(c.energy_source, EnergySource::NotUsed);
        assert_eq!(c.steps.len(), 3);
        assert_eq!(c.steps[0].formula, "1,000 km × 120 g/km ÷ 1,000 g/kg");
        assert_eq!(c.steps[0].value, "120.000 kg");
        assert_eq!(c.steps[2].value, "100.000 kg");

        let i = m.issuance(c.avoided_kg);
        assert_eq!(i.gross_kg, dec("100"));
        assert_eq!(i.buffer_kg, dec("5"));
        assert_eq!(i.net_kg, dec("95"));
        let credits = kg_to_credits(i.gross_kg);
        assert_eq!(credits, dec("0.100"));
        assert_eq!(credits.to_string(), "0.100");
        assert_eq!(kg_to_credits(dec("95")).to_string(), "0.095");
        assert_eq!(kg_to_credits(dec("1234.9")).to_string(), "1.234");
    }

    #[test]
    fn energy_measured() {
        // 250 km, 40 kWh metered, region VN, ENERGY-2025 v1 defaults:
        //   baseline = 250 km × 7.0 L/100 km ÷ 100 × 2.348 kg/L = 17.5 L × 2.348 = 41.09 kg
        //   project  = 40 kWh × 0.6592 kg/kWh × (1 + 0.08)     = 26.368 × 1.08 = 28.47744 kg
        //   avoided  = 41.09 − 28.47744                          = 12.61256 kg
        let m = Methodology::energy_default();
        let c = m.calculate(&trip("250", Some("40"), "16", "VN")).unwrap();
        assert_eq!(c.baseline_kg, dec("41.09"));
        assert_eq!(c.project_kg, dec("28.477440"));
        assert_eq!(c.avoided_kg, dec("12.612560"));
        assert_eq!(c.energy_kwh, dec("40"));
        assert_eq!(c.energy_source, EnergySource::Measured);
        let shown: Vec<(&str, &str)> = c
            .steps
            .iter()
            .map(|s| (s.label.as_str(), s.value.as_str()))
            .collect();
        assert_eq!(
            shown,
            [
                ("Baseline emissions", "41.090 kg"),
                ("Electricity used (measured)", "40 kWh"),
                ("Project emissions", "28.477 kg"),
                ("Avoided emissions", "12.613 kg"),
            ]
        );
        assert_eq!(c.steps[0].formula, "250 km × 7.0 L/100 km × 2.348 kg/L");
        assert_eq!(
            c.steps[2].formula,
            "40 kWh × 0.6592 kg/kWh (VN grid) × (1 + 0.08 losses)"
        );

        // Issuance of 12.61256 kg: gross 12, buffer ⌈12 × 0.05⌉ = ⌈0.6⌉ = 1, net 11.
        let i = m.issuance(c.avoided_kg);
        assert_eq!(
            (i.gross_kg, i.buffer_kg, i.net_kg),
            (dec("12"), dec("1"), dec("11"))
        );
    }

    #[test]
    fn energy_estimated() {
        // 1,000 km at 16 kWh/100 km, nothing metered, region "vn " (normalised to VN):
        //   baseline = 1,000 × 7.0 ÷ 100 × 2.348        = 70 L × 2.348 = 164.36 kg
        //   energy   = 1,000 × 16 ÷ 100                 = 160 kWh (estimated)
        //   project  = 160 × 0.6592 × 1.08              = 105.472 × 1.08 = 113.90976 kg
        //   avoided  = 164.36 − 113.90976               = 50.45024 kg
        let m = Methodology::energy_default();
        let c = m.calculate(&trip("1000", None, "16", "vn ")).unwrap();
        assert_eq!(c.energy_source, EnergySource::Estimated);
        assert_eq!(c.energy_kwh, dec("160"));
        assert_eq!(c.baseline_kg, dec("164.36"));
        assert_eq!(c.project_kg, dec("113.90976"));
        assert_eq!(c.avoided_kg, dec("50.45024"));
        assert_eq!(c.steps[0].formula, "1,000 km × 7.0 L/100 km × 2.348 kg/L");
        assert_eq!(c.steps[0].value, "164.360 kg");
        assert_eq!(c.steps[1].formula, "1,000 km × 16 kWh/100 km");
        assert_eq!(c.steps[1].value, "160.000 kWh");
        assert_eq!(c.steps[3].value, "50.450 kg");
    }

    #[test]
    fn energy_project_above_baseline_avoids_nothing() {
        // 100 km: baseline = 100 × 7.0 ÷ 100 × 2.348 = 16.436 kg;
        // 40 kWh metered: project = 40 × 0.6592 × 1.08 = 28.47744 kg > baseline → avoided 0.
        let m = Methodology::energy_default();
        let c = m.calculate(&trip("100", Some("40"), "16", "VN")).unwrap();
        assert_eq!(c.baseline_kg, dec("16.436"));
        assert_eq!(c.project_kg, dec("28.47744"));
        assert_eq!(c.avoided_kg, Decimal::ZERO);
        assert!(c.steps[3].formula.starts_with("max(0, "));
        assert_eq!(m.issuance(c.avoided_kg).gross_kg, Decimal::ZERO);
    }

    #[test]
    fn energy_unknown_region() {
        let mut m = Methodology::energy_default();
        m.version = 3;
        assert_eq!(
            m.calculate(&trip("10", None, "16", "TH")).unwrap_err(),
            "No grid emission factor for region TH in ENERGY-2025 v3."
        );
    }

    #[test]
    fn mismatched_params_are_refused() {
        let mut m = Methodology::seed_default();
        m.params = Params::Energy(EnergyParams::default());
        assert!(m.calculate(&trip("10", None, "16", "VN")).is_err());
        assert_eq!(fields(&m), ["params"]);
    }

    #[test]
    fn issuance_rounding() {
        let m = Methodology::seed_default();
        let i = m.issuance(dec("12.6"));
        assert_eq!(
            (i.gross_kg, i.buffer_kg, i.net_kg),
            (dec("12"), dec("1"), dec("11"))
        );
        // 20 kg × 0.05 = exactly 1 kg: no rounding up beyond the share.
        let i = m.issuance(dec("20.999"));
        assert_eq!(
            (i.gross_kg, i.buffer_kg, i.net_kg),
            (dec("20"), dec("1"), dec("19"))
        );
        let i = m.issuance(dec("0.9"));
        assert_eq!(
            (i.gross_kg, i.buffer_kg, i.net_kg),
            (dec("0"), dec("0"), dec("0"))
        );
        let i = m.issuance(dec("-3"));
        assert_eq!(i.gross_kg, Decimal::ZERO);
    }

    #[test]
    fn totals_sum_everything() {
        let m = Methodology::energy_default();
        let a = m.calculate(&trip("250", Some("40"), "16", "VN")).unwrap();
        let b = m.calculate(&trip("1000", None, "16", "VN")).unwrap();
        let t = total([&a, &b]);
        assert_eq!(t.trips, 2);
        assert_eq!(t.baseline_kg, dec("205.45"));
        assert_eq!(t.project_kg, dec("142.3872"));
        assert_eq!(t.avoided_kg, dec("63.0628"));
        assert_eq!(total(Vec::<&Calculation>::new()), Totals::default());
    }

    #[test]
    fn serde_round_trip() {
        for m in [Methodology::seed_default(), Methodology::energy_default()] {
            let json = serde_json::to_string(&m).unwrap();
            let back: Methodology = serde_json::from_str(&json).unwrap();
            assert_eq!(back, m);
        }
        let json = serde_json::to_string(&Methodology::energy_default().params).unwrap();
        assert!(json.contains("\"kind\":\"energy\""), "{json}");
        assert!(json.contains("\"VN\":\"0.6592\""), "{json}");
        let c = Methodology::energy_default()
            .calculate(&trip("250", Some("40"), "16", "VN"))
            .unwrap();
        let back: Calculation = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn defaults_are_valid() {
        assert_eq!(Methodology::seed_default().validate(), Ok(()));
        assert_eq!(Methodology::energy_default().validate(), Ok(()));
    }

    #[test]
    fn validate_seed_fields() {
        let mut m = Methodology::seed_default();
        seed_params(&mut m).ev_g_per_km = dec("120");
        let errs = m.validate().unwrap_err();
        assert_eq!(
            errs,
            [(
                "ev_g_per_km".to_owned(),
                "The EV emission factor must be lower than the baseline (120 g/km).".to_owned()
            )]
        );

        let mut m = Methodology::seed_default();
        seed_params(&mut m).baseline_g_per_km = Decimal::ZERO;
        seed_params(&mut m).ev_g_per_km = dec("-1");
        assert_eq!(fields(&m), ["baseline_g_per_km", "ev_g_per_km"]);

        let mut m = Methodology::seed_default();
        m.version = 0;
        m.buffer_share = dec("0.51");
        assert_eq!(fields(&m), ["version", "buffer_share"]);
        m.version = 1;
        m.buffer_share = dec("0.5");
        assert_eq!(m.validate(), Ok(()));
        m.buffer_share = dec("-0.01");
        assert_eq!(fields(&m), ["buffer_share"]);
        m.buffer_share = Decimal::ZERO;
        assert_eq!(m.validate(), Ok(()));
    }

    #[test]
    fn validate_energy_fields() {
        let mut m = Methodology::energy_default();
        energy_params(&mut m).baseline_l_per_100km = Decimal::ZERO;
        assert_eq!(fields(&m), ["baseline_l_per_100km"]);

        let mut m = Methodology::energy_default();
        energy_params(&mut m).fuel_kg_co2_per_l = dec("-2.3");
        assert_eq!(fields(&m), ["fuel_kg_co2_per_l"]);

        let mut m = Methodology::energy_default();
        energy_params(&mut m).losses_share = Decimal::ONE;
        assert_eq!(fields(&m), ["losses_share"]);
        energy_params(&mut m).losses_share = dec("-0.01");
        assert_eq!(fields(&m), ["losses_share"]);
        energy_params(&mut m).losses_share = Decimal::ZERO;
        assert_eq!(m.validate(), Ok(()));

        let mut m = Methodology::energy_default();
        energy_params(&mut m).grid_kg_co2_per_kwh.clear();
        let errs = m.validate().unwrap_err();
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].0, "grid_kg_co2_per_kwh");
        assert!(errs[0].1.contains("at least one grid region"));

        let mut m = Methodology::energy_default();
        energy_params(&mut m)
            .grid_kg_co2_per_kwh
            .insert("TH".to_owned(), Decimal::ZERO);
        let errs = m.validate().unwrap_err();
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0].1.contains("for TH must be greater than 0"),
            "{errs:?}"
        );

        for bad in ["V", "vn", "VN_SOUTH", "ABCDEFGHIJK", "V N"] {
            let mut m = Methodology::energy_default();
            energy_params(&mut m)
                .grid_kg_co2_per_kwh
                .insert(bad.to_owned(), dec("0.5"));
            let errs = m.validate().unwrap_err();
            assert_eq!(errs.len(), 1, "{bad:?}");
            assert!(errs[0].1.contains(&format!("“{bad}”")), "{errs:?}");
        }
        for good in ["TH", "VN-SOUTH", "ABCDEFGHIJ", "US-CA2"] {
            let mut m = Methodology::energy_default();
            energy_params(&mut m)
                .grid_kg_co2_per_kwh
                .insert(good.to_owned(), dec("0.5"));
            assert_eq!(m.validate(), Ok(()), "{good:?}");
        }
    }

    #[test]
    fn figures_are_the_numbers_of_calculate() {
        let inputs = [
            trip("1000", None, "16", "VN"),
            trip("250", Some("40"), "16", "vn "),
            trip("100", Some("50"), "16", "VN"),
            trip("0.001", None, "99.99", "VN"),
        ];
        for m in [Methodology::seed_default(), Methodology::energy_default()] {
            for input in &inputs {
                let c = m.calculate(input).unwrap();
                let f = m.figures(input).unwrap();
                assert_eq!(
                    (
                        f.baseline_kg,
                        f.project_kg,
                        f.avoided_kg,
                        f.energy_kwh,
                        f.energy_source
                    ),
                    (
                        c.baseline_kg,
                        c.project_kg,
                        c.avoided_kg,
                        c.energy_kwh,
                        c.energy_source
                    ),
                    "{} {input:?}",
                    m.code
                );
            }
        }
        let unknown = trip("10", None, "16", "XX");
        let m = Methodology::energy_default();
        assert_eq!(m.figures(&unknown), Err(m.calculate(&unknown).unwrap_err()));
    }

    fn period(
        trips: u64,
        km: &str,
        trip_kwh: &str,
        measured: u64,
        charging: &str,
        sessions: u64,
    ) -> PeriodInput {
        PeriodInput {
            trips,
            distance_km: dec(km),
            trip_energy_kwh: dec(trip_kwh),
            measured_trips: measured,
            charging_kwh: dec(charging),
            charging_sessions: sessions,
            region: "VN".into(),
        }
    }

    #[test]
    fn a_period_uses_the_larger_of_trip_energy_and_metered_charging() {
        let m = Methodology::energy_default();
        // 1,000 km: baseline 164.36 kg. Trips say 160 kWh; charging metered 200 kWh.
        let c = m
            .period(&period(40, "1000", "160", 10, "200", 5), "30A-1")
            .unwrap();
        assert_eq!(c.energy_kwh, dec("200"));
        assert_eq!(c.energy_source, EnergySource::Measured);
        // 200 × 0.6592 × 1.08 = 142.3872 kg; 164.36 − 142.3872 = 21.9728 kg.
        assert_eq!(c.project_kg, dec("142.387200"));
        assert_eq!(c.avoided_kg, dec("21.972800"));
        assert_eq!(c.steps[0].value, "1,000 km");
        assert!(
            c.steps.iter().any(|s| s
                .formula
                .contains("metered charging 200.000 kWh (5 sessions)")),
            "{:?}",
            c.steps
        );
        // Charging below the trips' figures: the trips' figure is used.
        let c = m
            .period(&period(40, "1000", "160", 10, "100", 2), "30A-1")
            .unwrap();
        assert_eq!(
            (c.energy_kwh, c.energy_source),
            (dec("160"), EnergySource::Estimated)
        );
        // No charging sessions: the trips' figure.
        let c = m
            .period(&period(40, "1000", "160", 40, "0", 0), "30A-1")
            .unwrap();
        assert_eq!(
            (c.energy_kwh, c.energy_source),
            (dec("160"), EnergySource::Measured)
        );
        // SEED-2025 does not use energy at all: 1,000 km → 100 kg.
        let c = Methodology::seed_default()
            .period(&period(40, "1000", "160", 10, "200", 5), "x")
            .unwrap();
        assert_eq!(
            (c.avoided_kg, c.energy_source),
            (dec("100"), EnergySource::NotUsed)
        );
        assert!(c.steps.iter().all(|s| s.label.starts_with("x: ")));
    }

    #[test]
    fn grouping() {
        assert_eq!(group(dec("0.5")), "0.5");
        assert_eq!(group(dec("999")), "999");
        assert_eq!(group(dec("1000")), "1,000");
        assert_eq!(group(dec("1234567.890")), "1,234,567.890");
        assert_eq!(group(dec("-12345")), "-12,345");
    }
}
