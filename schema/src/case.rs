//! The coded vocabularies of case management shared by every node: where a
//! service stands, what a follow-up is and where it stands, where an action
//! of a care plan stands, why a case was closed. Case notes,
//! services and follow-ups themselves live at the owner node
//! (`agency-node/src/store/case.rs`); these lists are shared so that a
//! partner agency and the statistics mean the same by them.

use crate::vocabulary::vocabulary;

vocabulary! {
    /// Where a service to a survivor stands.
    ServiceStatus, "service status" {
        /// Agreed but not started.
        Planned => "PLANNED",
        InProgress => "IN_PROGRESS",
        Delivered => "DELIVERED",
        Cancelled => "CANCELLED",
    }
}

impl ServiceStatus {
    /// Whether a service in this status may move to `to`: forward only,
    /// and nothing after delivered or cancelled.
    pub fn may_become(self, to: Self) -> bool {
        matches!(
            (self, to),
            (
                Self::Planned,
                Self::InProgress | Self::Delivered | Self::Cancelled
            ) | (Self::InProgress, Self::Delivered | Self::Cancelled)
        )
    }
}

vocabulary! {
    /// What a follow-up is. Follow-ups carry no free text: what was said
    /// goes in a case note, under the category it belongs to.
    FollowUpKind, "follow-up kind" {
        /// An appointment with the survivor.
        Appointment => "APPOINTMENT",
        HomeVisit => "HOME_VISIT",
        PhoneCall => "PHONE_CALL",
        /// A hearing the survivor attends.
        CourtDate => "COURT_DATE",
        /// A review of the case or of a service.
        CaseReview => "CASE_REVIEW",
    }
}

vocabulary! {
    /// Where a follow-up stands.
    FollowUpStatus, "follow-up status" {
        Open => "OPEN",
        Done => "DONE",
        Cancelled => "CANCELLED",
        /// The survivor did not come, or could not be reached.
        Missed => "MISSED",
    }
}

vocabulary! {
    /// Where an action of a care plan stands.
    PlanActionStatus, "plan action status" {
        ToDo => "TO_DO",
        InProgress => "IN_PROGRESS",
        Done => "DONE",
        Cancelled => "CANCELLED",
    }
}

impl PlanActionStatus {
    /// Forward only; nothing after done or cancelled.
    pub fn may_become(self, to: Self) -> bool {
        matches!(
            (self, to),
            (Self::ToDo, Self::InProgress | Self::Done | Self::Cancelled)
                | (Self::InProgress, Self::Done | Self::Cancelled)
        )
    }
}

vocabulary! {
    /// What a notification tells a caseworker's agency. A notification
    /// carries its kind and global IDs only, never record contents: the
    /// subscriber fetches through the disclosure path.
    NotificationKind, "notification kind" {
        /// A referral was sent to the agency (the receiver is told).
        ReferralReceived => "REFERRAL_RECEIVED",
        /// The receiving agency accepted, declined or completed a referral
        /// (the referrer is told).
        ReferralAnswered => "REFERRAL_ANSWERED",
        /// The referrer withdrew a referral (the receiver is told).
        ReferralWithdrawn => "REFERRAL_WITHDRAWN",
        /// A follow-up assigned to the agency falls due within a day.
        FollowUpDue => "FOLLOW_UP_DUE",
        /// The survivor agreed to a care plan version (the owner is told).
        CarePlanAgreed => "CARE_PLAN_AGREED",
        /// A break-glass window was opened on one of the agency's records.
        BreakGlassOpened => "BREAK_GLASS_OPENED",
        /// One of the agency's records was read under break-glass (the
        /// subject is the survivor).
        BreakGlassRead => "BREAK_GLASS_READ",
        /// A survivor's record the agency holds a referral of was erased at
        /// its owner (the subject is the survivor): pending referrals of it
        /// are withdrawn, and anything the agency kept of it should go too.
        RecordErased => "RECORD_ERASED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_moves_forward_only() {
        use ServiceStatus::*;
        assert!(Planned.may_become(InProgress));
        assert!(Planned.may_become(Delivered));
        assert!(InProgress.may_become(Cancelled));
        for done in [Delivered, Cancelled] {
            for to in ServiceStatus::ALL {
                assert!(!done.may_become(*to), "{done} -> {to}");
            }
        }
        assert!(!InProgress.may_become(Planned));
        assert!(!Planned.may_become(Planned));
    }

    #[test]
    fn a_plan_action_moves_forward_only() {
        use PlanActionStatus::*;
        assert!(ToDo.may_become(Done));
        assert!(InProgress.may_become(Cancelled));
        assert!(!Done.may_become(InProgress));
        assert!(!Cancelled.may_become(ToDo));
        assert!(!InProgress.may_become(ToDo));
    }

    #[test]
    fn follow_up_codes_round_trip() {
        for k in FollowUpKind::ALL {
            assert_eq!(k.as_str().parse::<FollowUpKind>().unwrap(), *k);
        }
        assert!("LUNCH".parse::<FollowUpKind>().is_err());
    }
}

vocabulary! {
    /// Why the agency that holds a survivor's record closed the case
    /// (coded, so that the statistics count cases closed by reason; what
    /// happened goes in a case note).
    CaseClosureReason, "case closure reason" {
        /// The goals of the care plan were met.
        GoalsMet => "GOALS_MET",
        /// The survivor goes on with another agency or programme.
        ContinuedElsewhere => "CONTINUED_ELSEWHERE",
        /// The survivor chose to end the support.
        SurvivorWithdrew => "SURVIVOR_WITHDREW",
        /// The survivor could no longer be reached.
        ContactLost => "CONTACT_LOST",
        Other => "OTHER",
    }
}
