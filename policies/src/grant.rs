//! Consent grants and break-glass openings as the node stores them, and the
//! plain-Rust computation of their state at the time of a request.
//!
//! A grant covers a request when it names the requesting agency, the
//! category and the declared purpose, is not revoked, and
//! `valid_from <= now < valid_until` (no `valid_until`: open-ended). When no
//! grant covers, the most specific reason is reported, in this order:
//! REVOKED > EXPIRED > NOT_YET_VALID (among grants naming agency, category and
//! purpose) > PURPOSE_NOT_GRANTED (a grant names agency and category, not the
//! purpose) > NO_GRANT. Revocation ranks first because it is the survivor's
//! latest explicit decision; a grant with any `revoked_at` counts as revoked,
//! even one dated in the future (fail closed).

use exchange_schema::{AgencyId, Category, Purpose, WithheldReason};
use time::{Duration, OffsetDateTime};

/// A survivor's consent grant, as the owner node stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantFacts {
    pub id: String,
    /// The one agency the grant is given to.
    pub grantee: AgencyId,
    pub categories: Vec<Category>,
    pub purposes: Vec<Purpose>,
    pub valid_from: OffsetDateTime,
    /// `None`: until revoked.
    pub valid_until: Option<OffsetDateTime>,
    pub revoked_at: Option<OffsetDateTime>,
}

/// A break-glass opening for one user and one survivor, as the node stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakGlassFacts {
    pub id: String,
    pub opened_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

/// The state of consent for one (agency, category, purpose) at one time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GrantState {
    /// No grant names this agency and category.
    NoGrant,
    /// A grant names this agency and category, but not this purpose.
    PurposeNotGranted,
    /// The best grant naming agency, category and purpose starts later.
    NotYetValid,
    /// The best grant naming agency, category and purpose has ended.
    Expired,
    /// The best grant naming agency, category and purpose was revoked.
    Revoked,
    /// A grant covers the request.
    Active,
}

impl GrantState {
    /// Stable lower-case name, as used in decision tables and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoGrant => "none",
            Self::PurposeNotGranted => "purpose_not_granted",
            Self::NotYetValid => "not_yet_valid",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
            Self::Active => "active",
        }
    }

    /// The reason told to a requester when this state withholds a category;
    /// `None` for [`GrantState::Active`].
    pub fn withheld_reason(self) -> Option<WithheldReason> {
        match self {
            Self::NoGrant => Some(WithheldReason::NoGrant),
            Self::PurposeNotGranted => Some(WithheldReason::PurposeNotGranted),
            Self::NotYetValid => Some(WithheldReason::GrantNotYetValid),
            Self::Expired => Some(WithheldReason::GrantExpired),
            Self::Revoked => Some(WithheldReason::GrantRevoked),
            Self::Active => None,
        }
    }
}

/// The consent state of one category, and the grant it refers to: the
/// covering grant when active, else the grant that explains the reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrantCoverage<'g> {
    pub state: GrantState,
    pub grant: Option<&'g GrantFacts>,
}

impl GrantCoverage<'_> {
    const NONE: Self = GrantCoverage {
        state: GrantState::NoGrant,
        grant: None,
    };
}

/// The state of one grant at `now`, ignoring what it names.
pub fn grant_time_state(grant: &GrantFacts, now: OffsetDateTime) -> GrantState {
    if grant.revoked_at.is_some() {
        GrantState::Revoked
    } else if now < grant.valid_from {
        GrantState::NotYetValid
    } else if grant.valid_until.is_some_and(|until| now >= until) {
        GrantState::Expired
    } else {
        GrantState::Active
    }
}

/// The consent state of one category for `agency` and `purpose` at `now`.
pub fn grant_state<'g>(
    grants: &'g [GrantFacts],
    agency: &AgencyId,
    category: Category,
    purpose: Purpose,
    now: OffsetDateTime,
) -> GrantCoverage<'g> {
    coverage_by_category(grants, agency, purpose, now)[category_index(category)]
}

/// The consent state of every category (indexed as [`Category::ALL`]) in one
/// pass over the grants.
pub fn coverage_by_category<'g>(
    grants: &'g [GrantFacts],
    agency: &AgencyId,
    purpose: Purpose,
    now: OffsetDateTime,
) -> [GrantCoverage<'g>; 5] {
    let mut best = [GrantCoverage::NONE; 5];
    for grant in grants {
        if grant.grantee != *agency {
            continue;
        }
        let state = if grant.purposes.contains(&purpose) {
            grant_time_state(grant, now)
        } else {
            GrantState::PurposeNotGranted
        };
        for &category in &grant.categories {
            let slot = &mut best[category_index(category)];
            // Strictly better only: the first grant of a rank is kept.
            if state > slot.state {
                *slot = GrantCoverage {
                    state,
                    grant: Some(grant),
                };
            }
        }
    }
    best
}

/// The consent state for a referral to `receiver`: any grant naming the
/// receiver and the REFERRAL purpose, whatever its categories.
pub fn referral_consent<'g>(
    grants: &'g [GrantFacts],
    receiver: &AgencyId,
    now: OffsetDateTime,
) -> GrantCoverage<'g> {
    let mut best = GrantCoverage::NONE;
    for grant in grants.iter().filter(|g| g.grantee == *receiver) {
        let state = if grant.purposes.contains(&Purpose::Referral) {
            grant_time_state(grant, now)
        } else {
            GrantState::PurposeNotGranted
        };
        if state > best.state {
            best = GrantCoverage {
                state,
                grant: Some(grant),
            };
        }
    }
    best
}

/// The position of a category in [`Category::ALL`].
pub const fn category_index(category: Category) -> usize {
    match category {
        Category::Identity => 0,
        Category::Contact => 1,
        Category::Case => 2,
        Category::Health => 3,
        Category::Legal => 4,
    }
}

/// Where a break-glass opening stands at the time of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BreakGlassState {
    /// No opening for this user and survivor.
    None,
    /// The deployment has switched break-glass off.
    Disabled,
    /// The opening starts later than now (clock skew or a forged record).
    NotYetOpen,
    /// The window has closed.
    Expired,
    /// The window is open: `opened_at <= now < expires_at`, and no longer
    /// than the configured window after `opened_at`.
    Active,
}

impl BreakGlassState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Disabled => "disabled",
            Self::NotYetOpen => "not_yet_open",
            Self::Expired => "expired",
            Self::Active => "active",
        }
    }

    /// The state of `opening` at `now`. The window ends at `expires_at` or at
    /// `opened_at + window`, whichever is first.
    pub fn of(
        opening: Option<&BreakGlassFacts>,
        enabled: bool,
        window: Duration,
        now: OffsetDateTime,
    ) -> Self {
        let Some(opening) = opening else {
            return Self::None;
        };
        if !enabled {
            return Self::Disabled;
        }
        let end = opening.expires_at.min(opening.opened_at + window);
        if now < opening.opened_at {
            Self::NotYetOpen
        } else if now >= end {
            Self::Expired
        } else {
            Self::Active
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2025-06-01 12:00 UTC);

    fn agency(id: &str) -> AgencyId {
        AgencyId::parse(id).unwrap()
    }

    fn grant(id: &str) -> GrantFacts {
        GrantFacts {
            id: id.into(),
            grantee: agency("legal-aid"),
            categories: vec![Category::Legal],
            purposes: vec![Purpose::LegalAssistance],
            valid_from: NOW - Duration::days(1),
            valid_until: None,
            revoked_at: None,
        }
    }

    fn state(grants: &[GrantFacts]) -> (GrantState, Option<&str>) {
        let c = grant_state(
            grants,
            &agency("legal-aid"),
            Category::Legal,
            Purpose::LegalAssistance,
            NOW,
        );
        (c.state, c.grant.map(|g| g.id.as_str()))
    }

    #[test]
    fn valid_from_equal_to_now_is_active() {
        let g = GrantFacts {
            valid_from: NOW,
            ..grant("g")
        };
        assert_eq!(state(&[g]), (GrantState::Active, Some("g")));
    }

    #[test]
    fn valid_until_equal_to_now_is_expired() {
        let g = GrantFacts {
            valid_until: Some(NOW),
            ..grant("g")
        };
        assert_eq!(state(&[g]).0, GrantState::Expired);
        let g = GrantFacts {
            valid_until: Some(NOW + Duration::nanoseconds(1)),
            ..grant("g")
        };
        assert_eq!(state(&[g]).0, GrantState::Active);
    }

    #[test]
    fn valid_from_after_now_is_not_yet_valid() {
        let g = GrantFacts {
            valid_from: NOW + Duration::nanoseconds(1),
            ..grant("g")
        };
        assert_eq!(state(&[g]).0, GrantState::NotYetValid);
    }

    #[test]
    fn any_revocation_revokes_even_a_future_one() {
        let g = GrantFacts {
            revoked_at: Some(NOW + Duration::days(3)),
            ..grant("g")
        };
        assert_eq!(state(&[g]).0, GrantState::Revoked);
    }

    #[test]
    fn one_active_grant_wins_over_any_other() {
        let revoked = GrantFacts {
            revoked_at: Some(NOW),
            ..grant("revoked")
        };
        assert_eq!(
            state(&[revoked, grant("good")]),
            (GrantState::Active, Some("good"))
        );
    }

    #[test]
    fn reasons_rank_revoked_expired_not_yet_valid_purpose_none() {
        let revoked = GrantFacts {
            revoked_at: Some(NOW - Duration::hours(1)),
            ..grant("revoked")
        };
        let expired = GrantFacts {
            valid_until: Some(NOW - Duration::hours(1)),
            ..grant("expired")
        };
        let later = GrantFacts {
            valid_from: NOW + Duration::hours(1),
            ..grant("later")
        };
        let other_purpose = GrantFacts {
            purposes: vec![Purpose::Referral],
            ..grant("other-purpose")
        };
        let all = [
            other_purpose.clone(),
            later.clone(),
            expired.clone(),
            revoked,
        ];
        assert_eq!(state(&all), (GrantState::Revoked, Some("revoked")));
        assert_eq!(state(&all[..3]), (GrantState::Expired, Some("expired")));
        assert_eq!(state(&all[..2]), (GrantState::NotYetValid, Some("later")));
        assert_eq!(
            state(&all[..1]),
            (GrantState::PurposeNotGranted, Some("other-purpose"))
        );
        assert_eq!(state(&[]), (GrantState::NoGrant, None));
    }

    #[test]
    fn grants_to_other_agencies_or_categories_do_not_count() {
        let other_agency = GrantFacts {
            grantee: agency("police"),
            ..grant("g1")
        };
        let other_category = GrantFacts {
            categories: vec![Category::Health],
            ..grant("g2")
        };
        assert_eq!(
            state(&[other_agency, other_category]).0,
            GrantState::NoGrant
        );
    }

    #[test]
    fn referral_consent_needs_the_referral_purpose() {
        let g = GrantFacts {
            purposes: vec![Purpose::Referral],
            ..grant("r")
        };
        let c = referral_consent(std::slice::from_ref(&g), &agency("legal-aid"), NOW);
        assert_eq!(c.state, GrantState::Active);
        let other = [grant("x")];
        let c = referral_consent(&other, &agency("legal-aid"), NOW);
        assert_eq!(c.state, GrantState::PurposeNotGranted);
        let c = referral_consent(std::slice::from_ref(&g), &agency("police"), NOW);
        assert_eq!(c.state, GrantState::NoGrant);
    }

    #[test]
    fn break_glass_window_is_capped_and_half_open() {
        let opening = BreakGlassFacts {
            id: "bg".into(),
            opened_at: NOW - Duration::hours(1),
            expires_at: NOW + Duration::hours(10),
        };
        let four = Duration::hours(4);
        assert_eq!(
            BreakGlassState::of(Some(&opening), true, four, NOW),
            BreakGlassState::Active
        );
        // Capped by the configured window even if expires_at is later.
        let at_cap = opening.opened_at + four;
        assert_eq!(
            BreakGlassState::of(Some(&opening), true, four, at_cap),
            BreakGlassState::Expired
        );
        let short = BreakGlassFacts {
            expires_at: NOW,
            ..opening.clone()
        };
        assert_eq!(
            BreakGlassState::of(Some(&short), true, four, NOW),
            BreakGlassState::Expired
        );
        assert_eq!(
            BreakGlassState::of(
                Some(&opening),
                true,
                four,
                opening.opened_at - Duration::SECOND
            ),
            BreakGlassState::NotYetOpen
        );
        assert_eq!(
            BreakGlassState::of(Some(&opening), false, four, NOW),
            BreakGlassState::Disabled
        );
        assert_eq!(
            BreakGlassState::of(None, true, four, NOW),
            BreakGlassState::None
        );
    }
}
