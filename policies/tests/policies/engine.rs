//! The engine as a node uses it: the cache, break-glass switched off, the
//! policy-set version and explanations.

use exchange_policies::{
    Action, ActionTarget, BreakGlassFacts, BreakGlassOptions, DisclosureBasis, EngineOptions,
    GrantFacts, PolicyEngine, RequestFacts,
};
use exchange_schema::{AgencyId, AgencyKind, Category, Purpose, Role, WithheldReason};
use time::{Duration, OffsetDateTime, macros::datetime};

const NOW: OffsetDateTime = datetime!(2025-06-01 12:00 UTC);
const WRITTEN: &str = "Survivor missing after a threat, must be located now";

fn id(s: &str) -> AgencyId {
    AgencyId::parse(s).unwrap()
}

fn request(kind: AgencyKind, role: Role, purpose: Purpose) -> RequestFacts {
    RequestFacts {
        agency: id("requester"),
        agency_kind: kind,
        roles: vec![role],
        user: "u1".into(),
        purpose,
        justification: None,
        now: NOW,
    }
}

fn grant(gid: &str, categories: &[Category], purposes: &[Purpose]) -> GrantFacts {
    GrantFacts {
        id: gid.into(),
        grantee: id("requester"),
        categories: categories.to_vec(),
        purposes: purposes.to_vec(),
        valid_from: NOW - Duration::days(1),
        valid_until: None,
        revoked_at: None,
    }
}

fn opening() -> BreakGlassFacts {
    BreakGlassFacts {
        id: "bg-1".into(),
        opened_at: NOW - Duration::minutes(10),
        expires_at: NOW + Duration::hours(1),
    }
}

#[test]
fn engine_is_send_sync_and_baseline_is_valid() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<PolicyEngine>();
    assert_send_sync::<exchange_policies::DecisionScope<'static>>();
    assert_send_sync::<exchange_policies::RecordDisclosure>();
    let engine = PolicyEngine::baseline(EngineOptions::default()).unwrap();
    assert_eq!(engine.set_hash().len(), 64);
    assert!(engine.set_hash().bytes().all(|b| b.is_ascii_hexdigit()));
    assert!(engine.policies().iter().all(|p| p.description.is_some()));
    assert_eq!(
        EngineOptions::default().break_glass.window,
        Duration::hours(4)
    );
    assert!(EngineOptions::default().break_glass.enabled);
}

#[test]
fn a_page_asks_cedar_once_per_distinct_fact_set() {
    let engine = PolicyEngine::baseline(EngineOptions::default()).unwrap();
    let mut scope = engine.scope(request(
        AgencyKind::LegalAid,
        Role::Caseworker,
        Purpose::LegalAssistance,
    ));
    let owner = id("shelter");
    for i in 0..100 {
        let grants = if i % 2 == 0 {
            vec![grant(
                &format!("g{i}"),
                &[Category::Legal],
                &[Purpose::LegalAssistance],
            )]
        } else {
            vec![]
        };
        let record = scope.disclose(&owner, &grants, None);
        assert_eq!(record.is_allowed(Category::Legal), i % 2 == 0);
        if i % 2 == 0 {
            assert_eq!(record.grant_ids(), vec![format!("g{i}").as_str()]);
        }
    }
    // 5 categories without a grant + LEGAL with one.
    assert_eq!(scope.cedar_evaluations(), 6);
}

#[test]
fn disclosure_explains_itself() {
    let engine = PolicyEngine::baseline(EngineOptions::default()).unwrap();
    let mut scope = engine.scope(request(
        AgencyKind::LegalAid,
        Role::Caseworker,
        Purpose::LegalAssistance,
    ));
    let grants = [grant(
        "g-7",
        &[Category::Legal, Category::Contact],
        &[Purpose::LegalAssistance],
    )];
    let record = scope.disclose(&id("shelter"), &grants, None);
    assert_eq!(record.allowed(), vec![Category::Legal]);
    assert_eq!(
        record.decision(Category::Legal).outcome,
        exchange_policies::CategoryOutcome::Allowed(DisclosureBasis::Grant {
            grant_id: "g-7".into()
        })
    );
    assert!(
        record
            .withheld()
            .contains(&(Category::Contact, WithheldReason::ForbiddenByPolicy))
    );
    assert!(
        record
            .withheld()
            .contains(&(Category::Health, WithheldReason::NoGrant))
    );
    assert_eq!(record.reason_code(), "PARTIAL");
    assert!(!record.break_glass_used());
    assert_eq!(
        record.policy_ids(),
        vec![
            "consent-grant-discloses-category",
            "contact-only-to-protection-agencies"
        ]
    );
    let text = record.explanation();
    for part in [
        "g-7",
        "consent-grant-discloses-category",
        "contact-only-to-protection-agencies",
        "NO_GRANT",
        "LEGAL_ASSISTANCE",
        engine.set_hash(),
    ] {
        assert!(text.contains(part), "{part} missing from {text}");
    }
}

#[test]
fn owner_reason_code_and_none() {
    let engine = PolicyEngine::baseline(EngineOptions::default()).unwrap();
    let mut scope = engine.scope(request(
        AgencyKind::Shelter,
        Role::Caseworker,
        Purpose::CaseManagement,
    ));
    let own = scope.disclose(&id("requester"), &[], None);
    assert_eq!(own.reason_code(), "OWNER");
    assert_eq!(own.allowed().len(), 5);
    let other = scope.disclose(&id("clinic"), &[], None);
    assert_eq!(other.reason_code(), "NONE");
}

#[test]
fn break_glass_discloses_within_its_window_and_is_marked() {
    let engine = PolicyEngine::baseline(EngineOptions::default()).unwrap();
    let mut req = request(AgencyKind::Shelter, Role::Supervisor, Purpose::Emergency);
    req.justification = Some(WRITTEN.into());
    let mut scope = engine.scope(req.clone());
    let record = scope.disclose(&id("clinic"), &[], Some(&opening()));
    assert!(record.break_glass_used());
    assert_eq!(
        record.allowed(),
        vec![Category::Identity, Category::Contact, Category::Health]
    );
    assert_eq!(record.reason_code(), "PARTIAL");
    assert!(record.explanation().contains("bg-1"));

    // A stored expiry beyond the configured window does not extend it.
    let long = BreakGlassFacts {
        opened_at: NOW - Duration::hours(5),
        expires_at: NOW + Duration::hours(5),
        ..opening()
    };
    let record = engine.scope(req).disclose(&id("clinic"), &[], Some(&long));
    assert!(record.allowed().is_empty());
}

#[test]
fn break_glass_switched_off_withholds_as_forbidden_and_denies_opening() {
    let options = EngineOptions {
        break_glass: BreakGlassOptions {
            enabled: false,
            ..BreakGlassOptions::default()
        },
    };
    let engine = PolicyEngine::baseline(options).unwrap();
    let mut req = request(AgencyKind::Shelter, Role::Supervisor, Purpose::Emergency);
    req.justification = Some(WRITTEN.into());
    let mut scope = engine.scope(req);
    let record = scope.disclose(&id("clinic"), &[], Some(&opening()));
    assert!(record.allowed().is_empty());
    assert!(
        record
            .withheld()
            .iter()
            .all(|(_, r)| *r == WithheldReason::ForbiddenByPolicy)
    );
    let decision = scope.authorize(Action::OpenBreakGlass, ActionTarget::owned_by(id("clinic")));
    assert!(!decision.permitted);
    assert_eq!(decision.reason, "BREAK_GLASS_DISABLED");
}

#[test]
fn referral_needs_consent_and_names_the_grant() {
    let engine = PolicyEngine::baseline(EngineOptions::default()).unwrap();
    let mut scope = engine.scope(request(
        AgencyKind::Shelter,
        Role::Caseworker,
        Purpose::Referral,
    ));
    let mut to_clinic = grant("r-1", &[Category::Identity], &[Purpose::Referral]);
    to_clinic.grantee = id("clinic");
    let target = ActionTarget::referral(id("requester"), id("clinic"), vec![to_clinic.clone()]);
    let decision = scope.authorize(Action::MakeReferral, target);
    assert!(decision.permitted, "{}", decision.explanation);
    assert_eq!(decision.reason, "PERMITTED");
    assert_eq!(decision.grant_id.as_deref(), Some("r-1"));
    assert_eq!(decision.policy_ids, vec!["referral-made-with-consent"]);

    to_clinic.revoked_at = Some(NOW);
    let target = ActionTarget::referral(id("requester"), id("clinic"), vec![to_clinic]);
    let decision = scope.authorize(Action::MakeReferral, target);
    assert!(!decision.permitted);
    assert_eq!(decision.reason, "CONSENT_REQUIRED");
    assert!(decision.explanation.contains("revoked"));
    assert!(decision.explanation.contains(engine.set_hash()));
}

#[test]
fn break_glass_expiry_uses_the_window() {
    let options = EngineOptions {
        break_glass: BreakGlassOptions {
            enabled: true,
            window: Duration::minutes(30),
        },
    };
    let engine = PolicyEngine::baseline(options).unwrap();
    assert_eq!(engine.break_glass_expiry(NOW), NOW + Duration::minutes(30));
}

#[test]
fn answers_are_shared_between_requests_but_revocation_applies_at_once() {
    let engine = PolicyEngine::baseline(EngineOptions::default()).unwrap();
    let req = request(
        AgencyKind::LegalAid,
        Role::Caseworker,
        Purpose::LegalAssistance,
    );
    let mut active = grant("g-1", &[Category::Legal], &[Purpose::LegalAssistance]);
    let mut first = engine.scope(req.clone());
    assert!(
        first
            .disclose(&id("shelter"), &[active.clone()], None)
            .is_allowed(Category::Legal)
    );
    assert_eq!(first.cedar_evaluations(), 5);

    active.revoked_at = Some(NOW);
    let mut second = engine.scope(req.clone());
    let record = second.disclose(&id("shelter"), &[active], None);
    assert_eq!(
        record.decision(Category::Legal).outcome,
        exchange_policies::CategoryOutcome::Withheld(WithheldReason::GrantRevoked)
    );
    // LEGAL without a grant is a new fact set; the other four are shared.
    assert_eq!(second.cedar_evaluations(), 1);

    // Another role is another profile.
    let mut other = engine.scope(request(
        AgencyKind::LegalAid,
        Role::Supervisor,
        Purpose::LegalAssistance,
    ));
    other.disclose(&id("shelter"), &[], None);
    assert_eq!(other.cedar_evaluations(), 5);
}

#[test]
fn a_set_that_reads_the_time_is_not_shared_between_requests() {
    let files = vec![exchange_policies::PolicyFile {
        name: "timed.cedar".into(),
        text: r#"
@id("office-hours-owner")
permit (principal, action == Action::"disclose", resource)
when { resource.ownedByRequester && context.now < datetime("2030-01-01T00:00:00Z") };
"#
        .into(),
    }];
    let engine = PolicyEngine::from_files(&files, EngineOptions::default()).unwrap();
    let req = request(
        AgencyKind::Shelter,
        Role::Caseworker,
        Purpose::CaseManagement,
    );
    let mut first = engine.scope(req.clone());
    assert!(
        first
            .disclose(&id("requester"), &[], None)
            .is_allowed(Category::Case)
    );
    let mut later = req;
    later.now = datetime!(2031-01-01 00:00 UTC);
    let mut second = engine.scope(later);
    assert!(
        !second
            .disclose(&id("requester"), &[], None)
            .is_allowed(Category::Case)
    );
    assert_eq!(second.cedar_evaluations(), 5);
}
