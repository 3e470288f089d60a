//! Synthetic demo data: invented survivors (never real people), consent
//! grants to partner agencies and referrals, and for the first survivor a
//! case with history (notes and a correction, services, follow-ups, an
//! accepted referral, a care plan agreed and a newer version waiting),
//! written through the same audited transactions as real changes. Seeding happens only into an empty
//! node, so a second start of the demo reuses its data.

use exchange_schema::{
    AgencyId, AuditKind, Category, ConsentMethod, FollowUpKind, FollowUpStatus, GlobalId,
    PlanActionStatus, Purpose, ReferralStatus, Role, ServiceKind, ServiceStatus, Urgency,
};
use time::Duration;

use crate::disclosure::change_event;
use crate::error::NodeError;
use crate::records::{
    CaseDetails, Contact, Functioning, HealthNotes, Identity, LegalStatus, RiskLevel, Validate,
};
use crate::state::{Caller, NodeState};
use crate::store::care_plan::{self, Agreement, CarePlanRecord, PlanAction};
use crate::store::case::{self, CaseNoteRecord, FollowUpRecord, ServiceRecord};
use crate::store::grants::ConsentGrantRecord;
use crate::store::referrals::{self, ReferralEvent, ReferralRecord};
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
    /// The survivor whose case has history (notes, plan, follow-ups).
    pub case_with_history: Option<GlobalId>,
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
    let existing = survivors::page(&mut conn, &state.vault, None, 1)
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
                region_of_identification: Some(DEMO_REGIONS[n % DEMO_REGIONS.len()].into()),
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
            erased: Vec::new(),
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
                if i == 0 && p == 0 {
                    seed_case_history(state, caller, &gid, partner, &referral.id).await?;
                    summary.case_with_history = Some(gid.clone());
                }
                summary.referrals.push((
                    GlobalId::new(state.agency.clone(), referral.id)?,
                    partner.clone(),
                ));
            }
        }
    }
    Ok(summary)
}

/// Writes `rows` with one audit entry of `kind` (reason `reason`), as the
/// seeding caller, in one transaction.
async fn seeded<F>(
    state: &NodeState,
    caller: &Caller,
    survivor: &GlobalId,
    kind: AuditKind,
    reason: &str,
    rows: F,
) -> Result<(), NodeError>
where
    F: for<'c> FnOnce(
            &'c mut sqlx::AnyConnection,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = anyhow::Result<()>> + Send + 'c>,
        > + Send
        + 'static,
{
    let mut event = change_event(caller, kind, Some(survivor.clone()), None);
    event.reason = reason.to_owned();
    state
        .audit
        .record::<_, NodeError, _>(move |conn| {
            Box::pin(async move {
                rows(conn).await.map_err(NodeError::internal)?;
                Ok(((), event))
            })
        })
        .await
}

/// The first survivor's case with history: the partner accepted the
/// referral; notes (one corrected); a shelter stay delivered and legal aid
/// planned; a home visit and a court date to come; care plan version 1
/// agreed (witnessed) and version 2 waiting for the survivor in the portal;
/// the intake caseworker assigned.
async fn seed_case_history(
    state: &NodeState,
    caller: &Caller,
    survivor: &GlobalId,
    partner: &AgencyId,
    referral: &str,
) -> Result<(), NodeError> {
    let now = exchange_schema::audit::now_millis();
    let local = survivor.local().to_owned();
    let owner = state.agency.clone();
    let me = format!("{}/{}", caller.principal.agency, caller.principal.user);
    let user = caller.principal.user.clone();

    let (id, partner_id) = (referral.to_owned(), partner.clone());
    let vault = state.vault.clone();
    seeded(
        state,
        caller,
        survivor,
        AuditKind::ReferralStatusChanged,
        "PENDING->ACCEPTED",
        move |conn| {
            Box::pin(async move {
                let step = ReferralEvent {
                    status: ReferralStatus::Accepted,
                    at: now,
                    by_agency: partner_id,
                    by_user: "partner-caseworker (synthetic)".into(),
                    note: Some("We can see her next week.".into()),
                };
                referrals::transition(conn, &vault, &id, ReferralStatus::Pending, &step).await?;
                Ok(())
            })
        },
    )
    .await?;

    let first_note = new_local_id();
    let notes = [
        (
            first_note.clone(),
            Category::Case,
            "Intake interview held; she wants to stay in the city.",
            None,
        ),
        (
            new_local_id(),
            Category::Health,
            "Synthetic: sleeping badly, agreed to see a counsellor.",
            None,
        ),
        (
            new_local_id(),
            Category::Case,
            "Intake interview held on Monday; she wants to stay in the city, near her sister.",
            Some(first_note),
        ),
    ];
    for (id, category, body, supersedes) in notes {
        let reason = if supersedes.is_some() {
            format!("CORRECTION:{category}")
        } else {
            format!("NOTE:{category}")
        };
        let note = CaseNoteRecord {
            id,
            survivor_id: local.clone(),
            category,
            body: body.into(),
            author_agency: owner.clone(),
            author_user: user.clone(),
            author_role: Role::Caseworker,
            created_at: exchange_schema::audit::now_millis(),
            supersedes,
            superseded_by: None,
        };
        let vault = state.vault.clone();
        seeded(
            state,
            caller,
            survivor,
            AuditKind::CaseNoteAdded,
            &reason,
            move |conn| Box::pin(async move { case::insert_note(conn, &vault, &note).await }),
        )
        .await?;
    }

    let stay = new_local_id();
    let services = [
        ServiceRecord {
            id: stay.clone(),
            survivor_id: local.clone(),
            kind: ServiceKind::Shelter,
            provider: owner.clone(),
            status: ServiceStatus::Delivered,
            planned_for: None,
            started_at: Some(now - Duration::days(20)),
            delivered_at: Some(now - Duration::days(2)),
            outcome: Some("Three weeks in the safe house (synthetic).".into()),
            created_at: now,
            created_by: me.clone(),
            updated_at: now,
        },
        ServiceRecord {
            id: new_local_id(),
            survivor_id: local.clone(),
            kind: ServiceKind::LegalAid,
            provider: partner.clone(),
            status: ServiceStatus::Planned,
            planned_for: Some(now + Duration::days(7)),
            started_at: None,
            delivered_at: None,
            outcome: None,
            created_at: now,
            created_by: me.clone(),
            updated_at: now,
        },
    ];
    for service in services {
        let reason = format!("NEW->{}", service.status);
        let vault = state.vault.clone();
        seeded(
            state,
            caller,
            survivor,
            AuditKind::ServiceRecorded,
            &reason,
            move |conn| Box::pin(async move { case::insert_service(conn, &vault, &service).await }),
        )
        .await?;
    }

    for (kind, days) in [(FollowUpKind::HomeVisit, 3), (FollowUpKind::CourtDate, 10)] {
        let follow_up = FollowUpRecord {
            id: new_local_id(),
            survivor_id: local.clone(),
            kind,
            due_at: now + Duration::days(days),
            assigned_agency: owner.clone(),
            assigned_user: Some(user.clone()),
            service_id: None,
            status: FollowUpStatus::Open,
            created_at: now,
            created_by: me.clone(),
            closed_at: None,
            closed_by: None,
        };
        seeded(
            state,
            caller,
            survivor,
            AuditKind::FollowUpRecorded,
            &format!("SCHEDULED:{kind}"),
            move |conn| Box::pin(async move { case::insert_follow_up(conn, &follow_up).await }),
        )
        .await?;
    }

    for version in [1, 2] {
        let plan = CarePlanRecord {
            survivor_id: local.clone(),
            version,
            goals: if version == 1 {
                vec![
                    "A safe place to live".into(),
                    "Advice on her residence status".into(),
                ]
            } else {
                vec![
                    "A safe place to live near her sister".into(),
                    "Advice on her residence status".into(),
                ]
            },
            actions: vec![
                PlanAction {
                    position: 1,
                    description: "Find a room in supported housing".into(),
                    responsible: owner.clone(),
                    due_at: Some(now + Duration::days(30)),
                    status: PlanActionStatus::ToDo,
                    updated_at: now,
                    updated_by: me.clone(),
                },
                PlanAction {
                    position: 2,
                    description: "First meeting with a lawyer".into(),
                    responsible: partner.clone(),
                    due_at: Some(now + Duration::days(7)),
                    status: PlanActionStatus::ToDo,
                    updated_at: now,
                    updated_by: me.clone(),
                },
            ],
            created_at: exchange_schema::audit::now_millis(),
            created_by: me.clone(),
            agreement: None,
            change_request: None,
        };
        let vault = state.vault.clone();
        seeded(
            state,
            caller,
            survivor,
            AuditKind::CarePlanProposed,
            &format!("VERSION:{version}"),
            move |conn| Box::pin(async move { care_plan::insert(conn, &vault, &plan).await }),
        )
        .await?;
        if version == 1 {
            let (local, me) = (local.clone(), me.clone());
            let vault = state.vault.clone();
            seeded(
                state,
                caller,
                survivor,
                AuditKind::CarePlanAgreed,
                "WITNESSED_WRITTEN",
                move |conn| {
                    Box::pin(async move {
                        let agreement = Agreement {
                            at: exchange_schema::audit::now_millis(),
                            method: ConsentMethod::WitnessedWritten,
                            by: me,
                            witness: Some("Intake supervisor (synthetic)".into()),
                        };
                        care_plan::agree(conn, &vault, &local, 1, &agreement).await?;
                        Ok(())
                    })
                },
            )
            .await?;
        }
    }

    let users = vec![user];
    seeded(
        state,
        caller,
        survivor,
        AuditKind::CaseworkersAssigned,
        "CASEWORKERS_ASSIGNED",
        move |conn| {
            Box::pin(async move { case::replace_assignments(conn, &local, &users, now, &me).await })
        },
    )
    .await
}

/// A generator of synthetic coded intakes, skewed like a real caseload (a
/// few nationalities and forms of exploitation common, the rest rare):
/// sex, date of birth, nationality, exploitation, functioning, and nothing
/// else. Deterministic for a given seed.
pub struct SyntheticIntake {
    x: u64,
    /// The region most of its survivors were identified in.
    home: &'static str,
}

/// The regions of the demo's synthetic map (`deploy/demo/regions.geojson`;
/// `XZ` is a user-assigned code, so no real place is named).
pub const DEMO_REGIONS: [&str; 6] = ["XZ-N", "XZ-C", "XZ-E", "XZ-S", "XZ-W", "XZ-M"];

impl SyntheticIntake {
    /// A generator seeded by `seed` (an agency's ID, say).
    pub fn new(seed: &str) -> Self {
        let x = seed.bytes().fold(1469598103934665603, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(1099511628211)
        });
        Self {
            x,
            home: DEMO_REGIONS[(x % DEMO_REGIONS.len() as u64) as usize],
        }
    }

    /// A number below `n` (a linear congruential step).
    fn next(&mut self, n: u64) -> u64 {
        self.x = self
            .x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.x >> 33) % n.max(1)
    }

    /// A region of the demo's map, the generator's own region (the one its
    /// seed names, if any) most often.
    fn region(&mut self) -> &'static str {
        let home = self.home;
        match self.next(10) {
            0..=3 => home,
            n => DEMO_REGIONS[(n as usize) % DEMO_REGIONS.len()],
        }
    }

    /// The `i`th synthetic survivor, registered at a moment of `period`.
    pub fn record(
        &mut self,
        i: usize,
        period: exchange_schema::statistics::Period,
        created_by: &str,
    ) -> SurvivorRecord {
        const NATIONALITIES: [&str; 10] =
            ["RO", "RO", "RO", "NG", "NG", "VN", "UA", "UA", "AL", "BR"];
        let quarter_ms = (period.end() - period.start()).whole_milliseconds() as u64;
        let at = period.start() + time::Duration::milliseconds(self.next(quarter_ms) as i64);
        let sex = match self.next(10) {
            0..=5 => Sex::Female,
            6..=8 => Sex::Male,
            _ => Sex::NotDisclosed,
        };
        let year =
            [2010, 2006, 2001, 1996, 1990, 1984, 1975][self.next(7) as usize] + self.next(4) as i32;
        let mut difficulty = || match self.next(10) {
            0..=6 => DifficultyLevel::NoDifficulty,
            7 | 8 => DifficultyLevel::SomeDifficulty,
            _ => DifficultyLevel::ALotOfDifficulty,
        };
        let functioning = Functioning {
            seeing: Some(difficulty()),
            hearing: Some(difficulty()),
            walking: Some(difficulty()),
            cognition: Some(difficulty()),
            self_care: Some(DifficultyLevel::NoDifficulty),
            communication: Some(DifficultyLevel::NoDifficulty),
        };
        SurvivorRecord {
            id: new_local_id(),
            created_at: at,
            updated_at: at,
            created_by: created_by.to_owned(),
            identity: Some(Identity {
                given_name: format!("Statistics {}", i + 1),
                family_name: Some("Synthetic".into()),
                preferred_name: None,
                date_of_birth: Some(format!("{year}-0{}-1{}", 1 + self.next(9), self.next(10))),
                age_band: None,
                sex: Some(sex),
                gender_identity: None,
                gender_self_description: None,
                nationality: Some(NATIONALITIES[self.next(10) as usize].into()),
                languages: vec!["en".into()],
                unmapped: vec![],
            }),
            contact: None,
            case: Some(CaseDetails {
                exploitation_types: vec![
                    [
                        ExploitationType::SexualExploitation,
                        ExploitationType::SexualExploitation,
                        ExploitationType::ForcedLabour,
                        ExploitationType::ForcedLabour,
                        ExploitationType::DomesticServitude,
                        ExploitationType::ForcedCriminality,
                    ][self.next(6) as usize],
                ],
                exploitation_other: None,
                countries_of_exploitation: vec![],
                risk_level: RiskLevel::Medium,
                region_of_identification: Some(self.region().into()),
                intake_date: None,
                needs: vec![],
                summary: None,
                unmapped: vec![],
            }),
            health: Some(HealthNotes {
                medical_notes: None,
                psychosocial_notes: None,
                allergies: vec![],
                functioning: Some(functioning),
            }),
            legal: None,
            erased: Vec::new(),
        }
    }
}

/// Seeds `count` synthetic survivors registered in `period` (a quarter
/// that has ended) with [`SyntheticIntake`], two in five of their cases
/// closed in it, for the demo's statistics release. Each registration and
/// closing is audited like any other.
pub async fn seed_statistics(
    state: &NodeState,
    caller: &Caller,
    count: usize,
    period: exchange_schema::statistics::Period,
) -> Result<usize, NodeError> {
    let mut intake = SyntheticIntake::new(state.agency.as_str());
    for i in 0..count {
        let mut record = intake.record(i, period, &caller.principal.user);
        record.identity.validate()?;
        record.case.validate()?;
        record.health.validate()?;
        let registered = record.created_at;
        let gid = crate::changes::register_survivor(state, caller, &record).await?;
        // Two in five cases closed in the quarter, a week after intake or
        // at its end, for the reasons in rotation.
        if i % 5 < 2 {
            use exchange_schema::CaseClosureReason;
            let reason = CaseClosureReason::ALL[(i / 5 + i) % CaseClosureReason::ALL.len()];
            let closed_at =
                (registered + time::Duration::days(7)).min(period.end() - time::Duration::hours(1));
            let closure = crate::store::case::CaseClosureRecord {
                id: crate::store::new_local_id(),
                closed_at,
                closed_by: format!("{}/{}", caller.principal.agency, caller.principal.user),
                reason,
                reopened_at: None,
                reopened_by: None,
            };
            let mut event = crate::disclosure::change_event(
                caller,
                exchange_schema::AuditKind::CaseStatusChanged,
                Some(gid.clone()),
                None,
            );
            event.reason = format!("CLOSED:{reason}");
            let local = gid.local().to_owned();
            state
                .audit
                .record::<_, NodeError, _>(move |conn| {
                    Box::pin(async move {
                        crate::store::case::close_case(conn, &local, &closure)
                            .await
                            .map_err(NodeError::internal)?;
                        Ok(((), event))
                    })
                })
                .await?;
        }
    }
    Ok(count)
}
