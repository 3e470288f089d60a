//! Synthetic demo data: invented survivors (never real people), consent
//! grants to partner agencies and referrals, written through the same
//! audited transactions as real changes. Seeding happens only into an empty
//! node, so a second start of the demo reuses its data.

use exchange_schema::{
    AgencyId, Category, ConsentMethod, GlobalId, Purpose, ReferralStatus, ServiceKind, Urgency,
};
use time::Duration;

use crate::error::NodeError;
use crate::records::{
    CaseDetails, Contact, Functioning, HealthNotes, Identity, LegalStatus, RiskLevel, Validate,
};
use crate::state::{Caller, NodeState};
use crate::store::grants::ConsentGrantRecord;
use crate::store::referrals::ReferralRecord;
use crate::store::survivors::SurvivorRecord;
use crate::store::{new_local_id, survivors};
use exchange_schema::intake::{AgeBand, DifficultyLevel, ExploitationType, GenderIdentity, Sex};

/// Invented given names: obviously synthetic records.
const GIVEN: [&str; 12] = [
    "Ana", "Bilal", "Chen", "Dara", "Esi", "Farah", "Goran", "Hana", "Iulia", "Jomo", "Kateryna",
    "Lina",
];
const FAMILY: [&str; 6] = [
    "Demo",
    "Sample",
    "Example",
    "Testperson",
    "Fictional",
    "Placeholder",
];
const EXPLOITATION: [ExploitationType; 4] = [
    ExploitationType::ForcedLabour,
    ExploitationType::SexualExploitation,
    ExploitationType::DomesticServitude,
    ExploitationType::ForcedCriminality,
];
/// Nationalities and countries of exploitation, as ISO 3166-1 codes.
const COUNTRIES: [&str; 6] = ["RO", "NG", "VN", "UA", "BR", "AL"];
const LANGUAGES: [&str; 6] = ["ro", "en", "vi", "uk", "pt-BR", "sq"];
const GENDERS: [(Sex, GenderIdentity); 4] = [
    (Sex::Female, GenderIdentity::Woman),
    (Sex::Male, GenderIdentity::Man),
    (Sex::Female, GenderIdentity::Woman),
    (Sex::NotDisclosed, GenderIdentity::NotDisclosed),
];

/// What was seeded, for the demo's printout.
#[derive(Debug, Clone, Default)]
pub struct SeedSummary {
    pub survivors: Vec<GlobalId>,
    pub grants: Vec<(GlobalId, AgencyId)>,
    pub referrals: Vec<(GlobalId, AgencyId)>,
    /// False when the node already had data and nothing was added.
    pub seeded: bool,
}

/// Seeds `count` synthetic survivors into an empty node. The first partner
/// gets grants for every second survivor and a referral for every third; the
/// caller acts as the node's own intake caseworker.
pub async fn seed_demo(
    state: &NodeState,
    caller: &Caller,
    partners: &[AgencyId],
    count: usize,
) -> Result<SeedSummary, NodeError> {
    let mut summary = SeedSummary::default();
    let mut conn = state.db.pool().acquire().await?;
    let existing = survivors::page(&mut conn, None, 1)
        .await
        .map_err(NodeError::internal)?;
    drop(conn);
    if !existing.is_empty() {
        return Ok(summary);
    }
    summary.seeded = true;
    let offset = state.agency.as_str().len();
    for i in 0..count {
        let now = exchange_schema::audit::now_millis();
        let n = i + offset;
        let record = SurvivorRecord {
            id: new_local_id(),
            created_at: now,
            updated_at: now,
            created_by: caller.principal.user.clone(),
            identity: Some(Identity {
                given_name: GIVEN[n % GIVEN.len()].into(),
                family_name: Some(FAMILY[n % FAMILY.len()].into()),
                preferred_name: None,
                date_of_birth: (n % 4 != 3)
                    .then(|| format!("{}-0{}-1{}", 1985 + n % 22, 1 + n % 9, n % 10)),
                age_band: (n % 4 == 3).then_some(AgeBand::Age25To34),
                sex: Some(GENDERS[n % GENDERS.len()].0),
                gender_identity: Some(GENDERS[n % GENDERS.len()].1),
                gender_self_description: None,
                nationality: Some(COUNTRIES[n % COUNTRIES.len()].into()),
                languages: vec![LANGUAGES[n % LANGUAGES.len()].into(), "en".into()],
                unmapped: vec![],
            }),
            contact: Some(Contact {
                safe_channel: Some("through the caseworker only".into()),
                phone: None,
                current_location: Some(format!("Safe house {} (synthetic)", 1 + n % 5)),
                safety_notes: None,
            }),
            case: Some(CaseDetails {
                exploitation_types: vec![EXPLOITATION[n % EXPLOITATION.len()]],
                exploitation_other: None,
                countries_of_exploitation: vec![COUNTRIES[(n + 1) % COUNTRIES.len()].into()],
                risk_level: [RiskLevel::Low, RiskLevel::Medium, RiskLevel::High][n % 3],
                intake_date: Some("2026-10-01".into()),
                needs: vec![ServiceKind::Shelter, ServiceKind::LegalAid],
                summary: Some("Synthetic demo record.".into()),
                unmapped: vec![],
            }),
            health: Some(HealthNotes {
                medical_notes: Some("Synthetic note: follow-up visit planned.".into()),
                psychosocial_notes: Some("Synthetic note.".into()),
                allergies: vec![],
                functioning: Some(Functioning {
                    walking: Some(
                        [
                            DifficultyLevel::NoDifficulty,
                            DifficultyLevel::ALotOfDifficulty,
                        ][n % 2],
                    ),
                    ..Functioning::default()
                }),
            }),
            legal: Some(LegalStatus {
                immigration_status: Some("application pending (synthetic)".into()),
                proceedings: vec![],
                protection_orders: vec![],
                notes: None,
            }),
        };
        // The seed's records pass the same checks as a caseworker's input
        // (and get the age band their date of birth gives).
        let mut record = record;
        record.identity.validate()?;
        record.case.validate()?;
        record.health.validate()?;
        let gid = crate::changes::register_survivor(state, caller, &record).await?;
        summary.survivors.push(gid.clone());

        for (p, partner) in partners.iter().enumerate() {
            if (i + p) % 2 != 0 {
                continue;
            }
            let grant = ConsentGrantRecord {
                id: new_local_id(),
                survivor_id: record.id.clone(),
                grantee: partner.clone(),
                categories: vec![
                    Category::Identity,
                    Category::Case,
                    Category::Legal,
                    Category::Health,
                ],
                purposes: vec![
                    Purpose::Referral,
                    Purpose::ServiceCoordination,
                    Purpose::LegalAssistance,
                    Purpose::HealthCare,
                ],
                valid_from: now,
                valid_until: Some(now + Duration::days(180)),
                method: ConsentMethod::WitnessedWritten,
                recorded_by: format!("{}/{}", caller.principal.agency, caller.principal.user),
                witness: Some("Intake supervisor (synthetic)".into()),
                created_at: now,
                revoked_at: None,
                revoked_by: None,
                revocation_reason: None,
            };
            crate::changes::record_consent(state, caller, &gid, &grant, now).await?;
            summary.grants.push((
                GlobalId::new(state.agency.clone(), grant.id)?,
                partner.clone(),
            ));

            if i % 3 == 0 {
                let referral = ReferralRecord {
                    id: new_local_id(),
                    survivor_id: record.id.clone(),
                    from_agency: state.agency.clone(),
                    to_agency: partner.clone(),
                    service: [
                        ServiceKind::LegalAid,
                        ServiceKind::Medical,
                        ServiceKind::Shelter,
                    ][(i + p) % 3],
                    urgency: if i % 2 == 0 {
                        Urgency::Urgent
                    } else {
                        Urgency::Routine
                    },
                    status: ReferralStatus::Pending,
                    notes: Some("Synthetic referral for the demo.".into()),
                    created_at: now,
                    updated_at: now,
                    created_by: caller.principal.user.clone(),
                    parent_id: None,
                };
                crate::changes::create_referral(state, caller, &gid, &referral).await?;
                summary.referrals.push((
                    GlobalId::new(state.agency.clone(), referral.id)?,
                    partner.clone(),
                ));
            }
        }
    }
    Ok(summary)
}
