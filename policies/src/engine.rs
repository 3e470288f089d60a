//! The policy engine: a validated Cedar policy set with its version hash, and
//! the per-request [`DecisionScope`] that asks Cedar once per distinct set of
//! facts and reuses the answer for every record of the request.
//!
//! What Cedar sees for a disclosure is only: the principal (agency, kind,
//! roles), the purpose, the time and the justification flag (constant within
//! a scope), and per category: the category, whether the requester owns the
//! record, whether an active grant covers it, and whether a break-glass
//! window is open. The scope's cache key is exactly that varying part, so a
//! cached answer is the answer Cedar would give. Answers are also shared
//! between requests with the same constant part (the principal profile),
//! unless a policy reads the time. Grant and break-glass states are computed
//! afresh on every call, so no cache can outlive a revocation.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, OnceLock, RwLock};

use cedar_policy::{
    ActionConstraint, Authorizer, Context, Decision, Entities, Entity, EntityId, EntityTypeName,
    EntityUid, PolicySet, Request, RestrictedExpression, Schema,
};
use exchange_schema::{AgencyId, AgencyKind, Category, Purpose, Role, WithheldReason};
use time::{Duration, OffsetDateTime, UtcOffset};

use crate::action::{Action, ActionDecision, ActionTarget};
use crate::disclosure::{CategoryDecision, CategoryOutcome, DisclosureBasis, RecordDisclosure};
use crate::error::PolicyError;
use crate::grant::{
    BreakGlassFacts, BreakGlassState, GrantFacts, GrantState, category_index, coverage_by_category,
    referral_consent,
};
use crate::source::{self, CompiledSet, PolicyFile, PolicyInfo};

pub use exchange_schema::headers::MIN_JUSTIFICATION_CHARS;

/// How break-glass works in this deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakGlassOptions {
    /// `false`: no break-glass opening is permitted or honoured.
    pub enabled: bool,
    /// The longest a window stays open after `opened_at`, whatever the stored
    /// `expires_at` says.
    pub window: Duration,
}

impl Default for BreakGlassOptions {
    fn default() -> Self {
        Self {
            enabled: true,
            window: Duration::hours(4),
        }
    }
}

/// Engine configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EngineOptions {
    pub break_glass: BreakGlassOptions,
}

/// Who asks, and why: constant for one GraphQL request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestFacts {
    pub agency: AgencyId,
    pub agency_kind: AgencyKind,
    pub roles: Vec<Role>,
    /// The user's ID at their agency (`sub`).
    pub user: String,
    pub purpose: Purpose,
    /// The written justification (break-glass).
    pub justification: Option<String>,
    pub now: OffsetDateTime,
}

impl RequestFacts {
    /// Whether the justification is long enough to count.
    pub fn is_justified(&self) -> bool {
        self.justification
            .as_deref()
            .is_some_and(|j| j.trim().chars().count() >= MIN_JUSTIFICATION_CHARS)
    }
}

/// What Cedar answered for one set of facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CedarOutcome {
    /// Cedar allowed, without any evaluation error.
    pub allowed: bool,
    /// Cedar denied because a `forbid` applied.
    pub forbidden: bool,
    /// The policies that decided (the permits that allowed, or the forbids
    /// that denied; empty for a default deny).
    pub policy_ids: Vec<String>,
    /// Evaluation errors; any error denies (fail closed).
    pub errors: Vec<String>,
}

/// Names of the Cedar types and actions the engine builds requests with.
struct CedarNames {
    user: EntityTypeName,
    agency: EntityTypeName,
    agency_kind: EntityTypeName,
    role: EntityTypeName,
    purpose: EntityTypeName,
    category: EntityTypeName,
    survivor_category: EntityTypeName,
    survivor_record: EntityTypeName,
    referral: EntityTypeName,
    case: EntityTypeName,
    audit_log: EntityTypeName,
    statistics: EntityTypeName,
    action_type: EntityTypeName,
    disclose: EntityUid,
}

impl CedarNames {
    fn new() -> Self {
        let ty = |name: &str| -> EntityTypeName {
            name.parse()
                .unwrap_or_else(|_| unreachable!("{name} is a valid Cedar type name"))
        };
        let action_type = ty("Action");
        Self {
            user: ty("User"),
            agency: ty("Agency"),
            agency_kind: ty("AgencyKind"),
            role: ty("Role"),
            purpose: ty("Purpose"),
            category: ty("Category"),
            survivor_category: ty("SurvivorCategory"),
            survivor_record: ty("SurvivorRecord"),
            referral: ty("Referral"),
            case: ty("Case"),
            audit_log: ty("AuditLog"),
            statistics: ty("Statistics"),
            disclose: Self::uid(&action_type, "disclose"),
            action_type,
        }
    }

    fn uid(ty: &EntityTypeName, id: &str) -> EntityUid {
        EntityUid::from_type_name_and_id(ty.clone(), EntityId::new(id))
    }

    fn action(&self, action: Action) -> EntityUid {
        Self::uid(&self.action_type, action.cedar_name())
    }
}

/// The resource entities: a fixed set, since resources carry only flags.
fn resource_entities(names: &CedarNames) -> Vec<Entity> {
    let mut out = Vec::new();
    let flag = |b: bool| RestrictedExpression::new_bool(b);
    for owned in [false, true] {
        for category in Category::ALL {
            let attrs = HashMap::from([
                (
                    "category".to_owned(),
                    RestrictedExpression::new_entity_uid(CedarNames::uid(
                        &names.category,
                        category.as_str(),
                    )),
                ),
                ("ownedByRequester".to_owned(), flag(owned)),
            ]);
            out.push(Entity::new(
                CedarNames::uid(
                    &names.survivor_category,
                    &survivor_category_id(*category, owned),
                ),
                attrs,
                HashSet::new(),
            ));
        }
        let attrs = HashMap::from([("ownedByRequester".to_owned(), flag(owned))]);
        out.push(Entity::new(
            CedarNames::uid(&names.survivor_record, owned_id(owned)),
            attrs.clone(),
            HashSet::new(),
        ));
        out.push(Entity::new(
            CedarNames::uid(&names.audit_log, owned_id(owned)),
            attrs.clone(),
            HashSet::new(),
        ));
        out.push(Entity::new(
            CedarNames::uid(&names.statistics, owned_id(owned)),
            attrs,
            HashSet::new(),
        ));
        for received in [false, true] {
            let attrs = HashMap::from([
                ("ownedByRequester".to_owned(), flag(owned)),
                ("receivedByRequester".to_owned(), flag(received)),
            ]);
            out.push(Entity::new(
                CedarNames::uid(&names.referral, &referral_id(owned, received)),
                attrs,
                HashSet::new(),
            ));
            let attrs = HashMap::from([
                ("ownedByRequester".to_owned(), flag(owned)),
                ("partnerOfRequester".to_owned(), flag(received)),
            ]);
            out.push(Entity::new(
                CedarNames::uid(&names.case, &referral_id(owned, received)),
                attrs,
                HashSet::new(),
            ));
        }
    }
    out.into_iter()
        .map(|e| e.unwrap_or_else(|_| unreachable!("literal attributes always evaluate")))
        .collect()
}

fn owned_id(owned: bool) -> &'static str {
    if owned { "own" } else { "other" }
}

fn survivor_category_id(category: Category, owned: bool) -> String {
    format!("{}/{}", owned_id(owned), category.as_str())
}

fn referral_id(owned: bool, received: bool) -> String {
    format!(
        "{}/{}",
        owned_id(owned),
        if received { "received" } else { "sent" }
    )
}

/// Splits a policy set by the action each policy's scope names.
fn split_by_action(
    names: &CedarNames,
    policies: &PolicySet,
) -> Result<Vec<(EntityUid, PolicySet)>, PolicyError> {
    let mut actions = vec![names.disclose.clone()];
    actions.extend(Action::ALL.iter().map(|a| names.action(*a)));
    let mut out = Vec::with_capacity(actions.len());
    for action in actions {
        let mut set = PolicySet::new();
        for policy in policies.policies() {
            let applies = match policy.action_constraint() {
                ActionConstraint::Any => true,
                ActionConstraint::Eq(uid) => uid == action,
                ActionConstraint::In(uids) => uids.contains(&action),
            };
            if applies {
                set.add(policy.clone()).map_err(|e| PolicyError::Invalid {
                    problems: crate::error::PolicyProblems(vec![crate::error::PolicyProblem {
                        file: String::new(),
                        policy: policy.id().to_string(),
                        line: None,
                        column: None,
                        reason: e.to_string(),
                    }]),
                })?;
            }
        }
        out.push((action, set));
    }
    Ok(out)
}

/// The validated policy set a node decides with. Cheap to share in an `Arc`.
pub struct PolicyEngine {
    schema: Schema,
    info: Vec<PolicyInfo>,
    set_hash: Arc<str>,
    options: EngineOptions,
    authorizer: Authorizer,
    names: CedarNames,
    /// Per action, the policies whose scope names it (or any action). The
    /// schema has no action groups, so this drops only policies that could
    /// never apply; it halves the work of each evaluation.
    by_action: Vec<(EntityUid, PolicySet)>,
    /// The resource entities, built once: resources carry only flags.
    resource_store: Result<Entities, String>,
    /// Whether a policy may read `context.now`; if so, decisions are cached
    /// only within a request.
    time_dependent: bool,
    /// Cedar's answers shared between requests, by principal profile.
    shared: RwLock<HashMap<PrincipalProfile, Arc<ProfileCache>>>,
}

/// Everything Cedar sees that is constant within a request. Two requests
/// with equal profiles get equal answers for equal per-record facts, so
/// their answers can be shared. The user's own ID is not shown to Cedar
/// (rules are about agencies and roles, never about a person). When a policy
/// may read the time, nothing is shared between requests.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct PrincipalProfile {
    agency: AgencyId,
    kind: AgencyKind,
    roles: Vec<Role>,
    purpose: Purpose,
    justified: bool,
}

/// Cedar's answers for one profile, by disclosure key.
struct ProfileCache {
    disclosures: [OnceLock<Arc<CedarOutcome>>; DISCLOSURE_KEYS],
}

/// Above this many profiles the shared cache starts again from empty.
const MAX_SHARED_PROFILES: usize = 4096;

impl std::fmt::Debug for PolicyEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyEngine")
            .field("set_hash", &self.set_hash)
            .field("policies", &self.info.len())
            .field("options", &self.options)
            .finish()
    }
}

impl PolicyEngine {
    /// Loads every `*.cedar` file in `dir`, validates the set against the
    /// schema in strict mode, and refuses an invalid set. The error names
    /// each file, policy and reason.
    pub fn load_dir(dir: &Path, options: EngineOptions) -> Result<Self, PolicyError> {
        let files = source::read_policy_dir(dir)?;
        Self::from_files(&files, options)
    }

    /// The shipped baseline set, embedded in the binary.
    pub fn baseline(options: EngineOptions) -> Result<Self, PolicyError> {
        Self::from_files(&source::baseline_files(), options)
    }

    /// Builds an engine from policy files held in memory.
    pub fn from_files(files: &[PolicyFile], options: EngineOptions) -> Result<Self, PolicyError> {
        let CompiledSet {
            schema,
            policies,
            info,
            hash,
        } = source::compile(source::SCHEMA_TEXT, files)?;
        let names = CedarNames::new();
        let by_action = split_by_action(&names, &policies)?;
        // Conservative: any mention of "now" (or a policy that cannot be
        // shown as JSON) counts as reading the time.
        let time_dependent = policies.policies().any(|p| {
            p.to_json()
                .map(|json| json.to_string().contains("\"now\""))
                .unwrap_or(true)
        });
        let debug_schema = cfg!(debug_assertions).then_some(&schema);
        let resource_store = Entities::from_entities(resource_entities(&names), debug_schema)
            .map_err(|e| e.to_string());
        Ok(Self {
            schema,
            info,
            set_hash: hash.into(),
            options,
            authorizer: Authorizer::new(),
            names,
            by_action,
            resource_store,
            time_dependent,
            shared: RwLock::new(HashMap::new()),
        })
    }

    /// Hex SHA-256 of the schema and the policy files: the version of the
    /// set, recorded with every decision.
    pub fn set_hash(&self) -> &str {
        &self.set_hash
    }

    pub fn options(&self) -> &EngineOptions {
        &self.options
    }

    /// The loaded policies, sorted by file then ID.
    pub fn policies(&self) -> &[PolicyInfo] {
        &self.info
    }

    /// One loaded policy by its `@id`.
    pub fn policy(&self, id: &str) -> Option<&PolicyInfo> {
        self.info.iter().find(|p| p.id == id)
    }

    /// When a break-glass window opened at `opened_at` closes.
    pub fn break_glass_expiry(&self, opened_at: OffsetDateTime) -> OffsetDateTime {
        opened_at + self.options.break_glass.window
    }

    /// Starts the decisions of one GraphQL request.
    pub fn scope(&self, request: RequestFacts) -> DecisionScope<'_> {
        DecisionScope::new(self, request)
    }

    /// Forgets every shared decision (for benchmarks and tests: decisions
    /// never go stale, since grants and break-glass are computed per call).
    pub fn clear_decision_cache(&self) {
        if let Ok(mut shared) = self.shared.write() {
            shared.clear();
        }
    }

    /// The shared answers for a profile; `None` when a policy reads the time.
    fn profile_cache(&self, profile: PrincipalProfile) -> Option<Arc<ProfileCache>> {
        if self.time_dependent {
            return None;
        }
        if let Some(hit) = self.shared.read().ok()?.get(&profile) {
            return Some(hit.clone());
        }
        let mut shared = self.shared.write().ok()?;
        if shared.len() >= MAX_SHARED_PROFILES {
            shared.clear();
        }
        let entry = shared.entry(profile).or_insert_with(|| {
            Arc::new(ProfileCache {
                disclosures: std::array::from_fn(|_| OnceLock::new()),
            })
        });
        Some(entry.clone())
    }

    /// The Cedar schema the set was validated against.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }
}

/// Formats a time as Cedar's `datetime` literal (UTC, milliseconds).
fn cedar_datetime(at: OffsetDateTime) -> String {
    let at = at.to_offset(UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.millisecond()
    )
}

const DISCLOSURE_KEYS: usize = 5 * 2 * 2 * 2;

/// The facts that vary between the disclosures of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DisclosureKey {
    category: Category,
    owned: bool,
    grant_active: bool,
    break_glass_active: bool,
}

impl DisclosureKey {
    fn index(self) -> usize {
        ((category_index(self.category) * 2 + usize::from(self.owned)) * 2
            + usize::from(self.grant_active))
            * 2
            + usize::from(self.break_glass_active)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ActionKey {
    action: Action,
    owned: bool,
    received: bool,
    referral_consent: bool,
}

/// The decisions of one GraphQL request: one principal, one purpose, one
/// time. Caches Cedar's answers by the facts that vary between records.
pub struct DecisionScope<'a> {
    engine: &'a PolicyEngine,
    request: RequestFacts,
    justified: bool,
    principal: EntityUid,
    principal_entity: Result<Entity, String>,
    now: String,
    entities: OnceLock<Result<Entities, String>>,
    disclosures: [Option<Arc<CedarOutcome>>; DISCLOSURE_KEYS],
    /// The answers shared with other requests of the same profile.
    shared: Option<Arc<ProfileCache>>,
    /// Contexts by (grant active, break-glass active): building one parses
    /// the `now` datetime, so it is done once per combination.
    disclosure_contexts: [Option<Context>; 4],
    /// Contexts by referral consent.
    action_contexts: [Option<Context>; 2],
    actions: Vec<(ActionKey, Arc<CedarOutcome>)>,
    evaluations: usize,
}

impl<'a> DecisionScope<'a> {
    fn new(engine: &'a PolicyEngine, request: RequestFacts) -> Self {
        let names = &engine.names;
        // The principal is "a user of this agency"; who they are is in the
        // audit entry, not in the rules.
        let principal = CedarNames::uid(&names.user, request.agency.as_str());
        let agency = CedarNames::uid(&names.agency, request.agency.as_str());
        let mut roles: Vec<Role> = request.roles.clone();
        roles.sort();
        roles.dedup();
        let attrs = HashMap::from([
            (
                "agency".to_owned(),
                RestrictedExpression::new_entity_uid(agency.clone()),
            ),
            (
                "agencyKind".to_owned(),
                RestrictedExpression::new_entity_uid(CedarNames::uid(
                    &names.agency_kind,
                    request.agency_kind.as_str(),
                )),
            ),
            (
                "roles".to_owned(),
                RestrictedExpression::new_set(roles.iter().map(|r| {
                    RestrictedExpression::new_entity_uid(CedarNames::uid(&names.role, r.as_str()))
                })),
            ),
        ]);
        let principal_entity = Entity::new(principal.clone(), attrs, HashSet::from([agency]))
            .map_err(|e| e.to_string());
        let justified = request.is_justified();
        let shared = engine.profile_cache(PrincipalProfile {
            agency: request.agency.clone(),
            kind: request.agency_kind,
            roles,
            purpose: request.purpose,
            justified,
        });
        Self {
            shared,
            engine,
            justified,
            now: cedar_datetime(request.now),
            request,
            principal,
            principal_entity,
            entities: OnceLock::new(),
            disclosures: std::array::from_fn(|_| None),
            disclosure_contexts: std::array::from_fn(|_| None),
            action_contexts: std::array::from_fn(|_| None),
            actions: Vec::new(),
            evaluations: 0,
        }
    }

    /// The facts this scope decides for.
    pub fn request(&self) -> &RequestFacts {
        &self.request
    }

    /// How many times this scope has asked Cedar.
    pub fn cedar_evaluations(&self) -> usize {
        self.evaluations
    }

    /// The engine this scope decides with.
    pub fn engine(&self) -> &'a PolicyEngine {
        self.engine
    }

    /// Decides all five categories of one survivor record owned by `owner`,
    /// given the survivor's grants and this user's break-glass opening on
    /// this survivor (if any).
    pub fn disclose(
        &mut self,
        owner: &AgencyId,
        grants: &[GrantFacts],
        break_glass: Option<&BreakGlassFacts>,
    ) -> RecordDisclosure {
        self.disclose_with(owner, grants, break_glass, true)
    }

    /// The same decision as [`DecisionScope::disclose`], asking Cedar once
    /// per category without the cache: the naive baseline for benchmarks,
    /// and an oracle for tests of the cache.
    pub fn disclose_uncached(
        &mut self,
        owner: &AgencyId,
        grants: &[GrantFacts],
        break_glass: Option<&BreakGlassFacts>,
    ) -> RecordDisclosure {
        self.disclose_with(owner, grants, break_glass, false)
    }

    fn disclose_with(
        &mut self,
        owner: &AgencyId,
        grants: &[GrantFacts],
        break_glass: Option<&BreakGlassFacts>,
        cached: bool,
    ) -> RecordDisclosure {
        let options = self.engine.options.break_glass;
        let now = self.request.now;
        let owned = *owner == self.request.agency;
        let bg_state = BreakGlassState::of(break_glass, options.enabled, options.window, now);
        let break_glass_active = bg_state == BreakGlassState::Active;
        let coverage =
            coverage_by_category(grants, &self.request.agency, self.request.purpose, now);
        let purpose = self.request.purpose;
        let decisions = std::array::from_fn(|i| {
            let category = Category::ALL[i];
            let cover = coverage[i];
            let key = DisclosureKey {
                category,
                owned,
                grant_active: cover.state == GrantState::Active,
                break_glass_active,
            };
            let cedar = if cached {
                self.cached_disclosure(key)
            } else {
                Arc::new(self.evaluate_disclosure(key))
            };
            let (outcome, related_grant) = if cedar.allowed {
                let basis = if owned {
                    DisclosureBasis::Owner
                } else if let (GrantState::Active, Some(grant)) = (cover.state, cover.grant) {
                    DisclosureBasis::Grant {
                        grant_id: grant.id.clone(),
                    }
                } else if let (true, Some(opening)) = (break_glass_active, break_glass) {
                    DisclosureBasis::BreakGlass {
                        id: opening.id.clone(),
                    }
                } else {
                    DisclosureBasis::Policy
                };
                (CategoryOutcome::Allowed(basis), None)
            } else {
                // A forbid, an evaluation error, the owner refused, or
                // break-glass switched off: a rule decided, not consent.
                // Otherwise the consent state says why.
                let by_rule = !cedar.errors.is_empty()
                    || cedar.forbidden
                    || owned
                    || (purpose == Purpose::Emergency && !options.enabled);
                let reason = if by_rule {
                    WithheldReason::ForbiddenByPolicy
                } else {
                    cover
                        .state
                        .withheld_reason()
                        .unwrap_or(WithheldReason::ForbiddenByPolicy)
                };
                (
                    CategoryOutcome::Withheld(reason),
                    cover.grant.map(|g| g.id.clone()),
                )
            };
            CategoryDecision {
                category,
                outcome,
                grant_state: cover.state,
                related_grant,
                cedar,
            }
        });
        RecordDisclosure {
            decisions,
            owned,
            purpose,
            break_glass: break_glass.map(|b| (b.id.clone(), bg_state)),
            policy_set: self.engine.set_hash.clone(),
        }
    }

    fn cached_disclosure(&mut self, key: DisclosureKey) -> Arc<CedarOutcome> {
        let index = key.index();
        if let Some(hit) = &self.disclosures[index] {
            return hit.clone();
        }
        let shared_hit = self
            .shared
            .as_ref()
            .and_then(|shared| shared.disclosures[index].get().cloned());
        let outcome = match shared_hit {
            Some(hit) => hit,
            None => {
                let outcome = Arc::new(self.evaluate_disclosure(key));
                if let Some(shared) = &self.shared {
                    // A concurrent request may have set it first: same answer.
                    let _ = shared.disclosures[index].set(outcome.clone());
                }
                outcome
            }
        };
        self.disclosures[index] = Some(outcome.clone());
        outcome
    }

    fn evaluate_disclosure(&mut self, key: DisclosureKey) -> CedarOutcome {
        let names = &self.engine.names;
        let resource = CedarNames::uid(
            &names.survivor_category,
            &survivor_category_id(key.category, key.owned),
        );
        let slot = usize::from(key.grant_active) * 2 + usize::from(key.break_glass_active);
        let context = match &self.disclosure_contexts[slot] {
            Some(context) => Ok(context.clone()),
            None => {
                let built = Context::from_pairs([
                    self.purpose_pair(),
                    self.now_pair(),
                    bool_pair("hasActiveGrant", key.grant_active),
                    bool_pair("breakGlassActive", key.break_glass_active),
                    bool_pair("hasJustification", self.justified),
                ])
                .map_err(|e| e.to_string());
                if let Ok(context) = &built {
                    self.disclosure_contexts[slot] = Some(context.clone());
                }
                built
            }
        };
        let action = self.engine.names.disclose.clone();
        self.evaluate(action, resource, context)
    }

    fn purpose_pair(&self) -> (String, RestrictedExpression) {
        (
            "purpose".to_owned(),
            RestrictedExpression::new_entity_uid(CedarNames::uid(
                &self.engine.names.purpose,
                self.request.purpose.as_str(),
            )),
        )
    }

    fn now_pair(&self) -> (String, RestrictedExpression) {
        (
            "now".to_owned(),
            RestrictedExpression::new_datetime(&self.now),
        )
    }

    /// Decides a non-disclosure action.
    pub fn authorize(&mut self, action: Action, target: ActionTarget) -> ActionDecision {
        let now = self.request.now;
        let owned = target.owner == self.request.agency;
        let received = target.receiver.as_ref() == Some(&self.request.agency);
        let consent = match (action, &target.receiver) {
            (Action::MakeReferral | Action::ReferOnward, Some(receiver)) => {
                Some(referral_consent(&target.grants, receiver, now))
            }
            (Action::MakeReferral | Action::ReferOnward, None) => {
                Some(crate::grant::GrantCoverage {
                    state: GrantState::NoGrant,
                    grant: None,
                })
            }
            _ => None,
        };
        let referral_consent = consent.is_some_and(|c| c.state == GrantState::Active);
        let grant_id = consent.and_then(|c| c.grant).map(|g| g.id.clone());
        let facts = crate::action::ActionFacts {
            action,
            owner: &target.owner,
            receiver: target.receiver.as_ref(),
            owned,
            received,
            consent: consent.map(|c| c.state),
            grant_id: grant_id.as_deref(),
            justified: self.justified,
            purpose: self.request.purpose,
            policy_set: &self.engine.set_hash,
        };
        if action == Action::OpenBreakGlass && !self.engine.options.break_glass.enabled {
            return facts.decide(None, "BREAK_GLASS_DISABLED");
        }
        let key = ActionKey {
            action,
            owned,
            received,
            referral_consent,
        };
        let cedar = match self.actions.iter().find(|(k, _)| *k == key) {
            Some((_, hit)) => hit.clone(),
            None => {
                let outcome = Arc::new(self.evaluate_action(key));
                self.actions.push((key, outcome.clone()));
                outcome
            }
        };
        let reason = if cedar.allowed {
            "PERMITTED"
        } else if !cedar.errors.is_empty() {
            "POLICY_ERROR"
        } else if cedar.forbidden {
            "FORBIDDEN_BY_POLICY"
        } else if matches!(action, Action::MakeReferral | Action::ReferOnward) && !referral_consent
        {
            "CONSENT_REQUIRED"
        } else if action == Action::OpenBreakGlass && !self.justified {
            "JUSTIFICATION_REQUIRED"
        } else {
            "NOT_PERMITTED"
        };
        facts.decide(Some(&cedar), reason)
    }

    fn evaluate_action(&mut self, key: ActionKey) -> CedarOutcome {
        let names = &self.engine.names;
        let resource = match key.action.resource_kind() {
            crate::action::ResourceKind::SurvivorRecord => {
                CedarNames::uid(&names.survivor_record, owned_id(key.owned))
            }
            crate::action::ResourceKind::Referral => {
                CedarNames::uid(&names.referral, &referral_id(key.owned, key.received))
            }
            crate::action::ResourceKind::AuditLog => {
                CedarNames::uid(&names.audit_log, owned_id(key.owned))
            }
            crate::action::ResourceKind::Statistics => {
                CedarNames::uid(&names.statistics, owned_id(key.owned))
            }
            crate::action::ResourceKind::Case => {
                CedarNames::uid(&names.case, &referral_id(key.owned, key.received))
            }
        };
        let slot = usize::from(key.referral_consent);
        let context = match &self.action_contexts[slot] {
            Some(context) => Ok(context.clone()),
            None => {
                let built = Context::from_pairs([
                    self.purpose_pair(),
                    self.now_pair(),
                    bool_pair("hasJustification", self.justified),
                    bool_pair("referralConsentActive", key.referral_consent),
                ])
                .map_err(|e| e.to_string());
                if let Ok(context) = &built {
                    self.action_contexts[slot] = Some(context.clone());
                }
                built
            }
        };
        let action = self.engine.names.action(key.action);
        self.evaluate(action, resource, context)
    }

    fn evaluate(
        &mut self,
        action: EntityUid,
        resource: EntityUid,
        context: Result<Context, String>,
    ) -> CedarOutcome {
        self.evaluations += 1;
        let fail = |error: String| CedarOutcome {
            allowed: false,
            forbidden: false,
            policy_ids: Vec::new(),
            errors: vec![error],
        };
        // Debug builds (tests) check every request against the schema too.
        let schema = cfg!(debug_assertions).then_some(&self.engine.schema);
        let entities = self.entities.get_or_init(|| {
            let principal = self.principal_entity.clone()?;
            self.engine
                .resource_store
                .clone()?
                .add_entities([principal], schema)
                .map_err(|e| e.to_string())
        });
        let entities = match entities {
            Ok(entities) => entities,
            Err(error) => return fail(error.clone()),
        };
        let context = match context {
            Ok(context) => context,
            Err(error) => return fail(error),
        };
        let Some((_, policies)) = self.engine.by_action.iter().find(|(uid, _)| *uid == action)
        else {
            return fail(format!("no policy set for action {action}"));
        };
        let request = match Request::new(self.principal.clone(), action, resource, context, schema)
        {
            Ok(request) => request,
            Err(error) => return fail(error.to_string()),
        };
        let response = self
            .engine
            .authorizer
            .is_authorized(&request, policies, entities);
        let diagnostics = response.diagnostics();
        let errors: Vec<String> = diagnostics.errors().map(|e| e.to_string()).collect();
        let mut policy_ids: Vec<String> = diagnostics.reason().map(|id| id.to_string()).collect();
        policy_ids.sort();
        let allow = response.decision() == Decision::Allow;
        CedarOutcome {
            allowed: allow && errors.is_empty(),
            forbidden: !allow && !policy_ids.is_empty(),
            policy_ids,
            errors,
        }
    }
}

fn bool_pair(name: &str, value: bool) -> (String, RestrictedExpression) {
    (name.to_owned(), RestrictedExpression::new_bool(value))
}
