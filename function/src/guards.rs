//! What the group's own state says before and after the policy: the operator's pause tag, and
//! a group still converging on the capacity it was given.

use std::collections::BTreeMap;

use crate::autoscaling::GroupState;
use crate::policy::{Action, Decision};

/// The tag that pauses the scaler: with the value `true` (any case) every run is a `skip`
/// that writes nothing and sends no message.
pub const PAUSE_TAG: &str = "kafka-lag-scaler:paused";

/// The reason a paused run gives.
pub const PAUSED_REASON: &str = "paused by tag";

const IN_SERVICE: &str = "InService";

/// True when the operator has paused the scaler on this group. Tag keys are case-sensitive
/// in AWS; the value is read case-insensitively so `True` and `TRUE` work too.
pub fn is_paused(group: &GroupState) -> bool {
    group
        .tags
        .iter()
        .any(|(key, value)| key == PAUSE_TAG && value.trim().eq_ignore_ascii_case("true"))
}

/// Says in a hold's reason that the group is still converging on its DesiredCapacity, so the
/// reader knows why instances are missing and that the scaler is waiting, not writing again.
pub fn explain_hold(decided: Decision, group: &GroupState) -> Decision {
    if decided.action != Action::Hold {
        return decided;
    }
    let in_service = group
        .instance_states
        .iter()
        .filter(|state| state.as_str() == IN_SERVICE)
        .count();
    let settled = in_service == group.instance_states.len()
        && i32::try_from(in_service).is_ok_and(|n| n == group.desired_capacity);
    if settled {
        return decided;
    }
    let mut others: BTreeMap<&str, usize> = BTreeMap::new();
    for state in &group.instance_states {
        if state != IN_SERVICE {
            *others.entry(state.as_str()).or_default() += 1;
        }
    }
    let mut states = vec![format!("{in_service} InService")];
    states.extend(others.iter().map(|(state, n)| format!("{n} {state}")));
    Decision {
        action: Action::Hold,
        reason: format!(
            "{}; the group is converging on {} instance(s) ({}), so nothing is written again",
            decided.reason,
            group.desired_capacity,
            states.join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(desired_capacity: i32, states: &[&str], tags: &[(&str, &str)]) -> GroupState {
        GroupState {
            name: "asg".into(),
            min_size: desired_capacity,
            max_size: 10,
            desired_capacity,
            instance_states: states.iter().map(|s| (*s).to_owned()).collect(),
            suspended_processes: vec![],
            desired_capacity_type: None,
            tags: tags
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    fn hold() -> Decision {
        Decision {
            action: Action::Hold,
            reason: "lag 12000000 > 10000000 and the group already has 4 instance(s)".into(),
        }
    }

    #[test]
    fn the_pause_tag_pauses_whatever_the_case_of_its_value() {
        for value in ["true", "True", "TRUE", " true "] {
            assert!(
                is_paused(&group(0, &[], &[(PAUSE_TAG, value)])),
                "{value:?}"
            );
        }
    }

    #[test]
    fn other_values_and_other_keys_do_not_pause() {
        let rows: &[(&str, &str, &str)] = &[
            (PAUSE_TAG, "false", "the value false"),
            (PAUSE_TAG, "yes", "a value other than true"),
            (PAUSE_TAG, "", "an empty value"),
            ("Kafka-Lag-Scaler:Paused", "true", "a key in another case"),
            ("kafka-lag-scaler:pause", "true", "another key"),
        ];
        for (key, value, why) in rows {
            assert!(!is_paused(&group(0, &[], &[(key, value)])), "{why}");
        }
        assert!(!is_paused(&group(0, &[], &[])), "no tags");
    }

    #[test]
    fn a_hold_on_a_converging_group_counts_its_instances_by_state() {
        let converging = group(4, &["Pending", "InService", "Pending:Wait", "Pending"], &[]);

        let decided = explain_hold(hold(), &converging);

        assert_eq!(decided.action, Action::Hold);
        assert!(
            decided.reason.ends_with(
                "; the group is converging on 4 instance(s) (1 InService, 2 Pending, \
                 1 Pending:Wait), so nothing is written again"
            ),
            "{}",
            decided.reason
        );
    }

    #[test]
    fn missing_instances_also_mean_converging() {
        let decided = explain_hold(hold(), &group(4, &["InService", "InService"], &[]));
        assert!(
            decided
                .reason
                .contains("converging on 4 instance(s) (2 InService)"),
            "{}",
            decided.reason
        );
    }

    #[test]
    fn a_settled_group_keeps_the_reason_as_it_was() {
        let settled = group(4, &["InService"; 4], &[]);
        assert_eq!(explain_hold(hold(), &settled), hold());
        assert_eq!(explain_hold(hold(), &group(0, &[], &[])), hold());
    }

    #[test]
    fn only_holds_are_explained() {
        let skip = Decision {
            action: Action::Skip,
            reason: "no usable lag".into(),
        };
        assert_eq!(
            explain_hold(skip.clone(), &group(4, &["Pending"], &[])),
            skip
        );
    }
}
