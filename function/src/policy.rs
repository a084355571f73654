//! The scaling policy: a pure function from (lag, group, configuration) to a decision.
//!
//! `C` is the group's DesiredCapacity; `HIGH`, `LOW`, `OUT` and `IN` come from the
//! configuration (`HIGH_LAG_THRESHOLD`, `LOW_LAG_THRESHOLD`, `SCALE_OUT_CAPACITY`,
//! `SCALE_IN_CAPACITY`). `OUT` is first clamped to the group's MaxSize.
//!
//! | row | lag            | C              | decision                                   |
//! |-----|----------------|----------------|--------------------------------------------|
//! | 1   | > HIGH         | <= IN          | scale out to OUT                           |
//! | 1b  | > HIGH         | IN < C < OUT   | scale out to OUT (explicit cell)           |
//! | 2   | LOW ..= HIGH   | IN < C < OUT   | scale out to OUT ("top up")                |
//! | 3   | > HIGH         | >= OUT         | hold                                       |
//! | 4   | < LOW          | >= OUT         | scale in to IN (back to Karpenter)         |
//! | 4b  | < LOW          | IN < C < OUT   | scale in to IN (explicit cell)             |
//! | 5   | < LOW          | = IN           | hold                                       |
//! | 6   | LOW ..= HIGH   | <= IN or >= OUT| hold (hysteresis: start only on high lag,  |
//! |     |                |                | drain before returning)                    |
//! | 6   | < LOW          | < IN           | hold (the scaler never raises on low lag)  |
//!
//! `> HIGH` and `< LOW` are strict; `LOW ..= HIGH` is inclusive.
//!
//! Before the table, and after it, guards turn a decision into a `skip` when it cannot be
//! carried out safely: unknown lag, a capacity type other than instance counts, a scale-in
//! on data that may be partial, a suspended `Launch` or `Terminate` process, or a MaxSize
//! that leaves no room above the standby capacity. A skip never writes to the group.
//!
//! Between the table and the guards, the sustained-breach windows (`SCALE_OUT_SUSTAIN`,
//! `SCALE_IN_SUSTAIN`, see [`crate::window`]) may turn row 1 (a start from standby) and rows
//! 4 and 4b (a return to standby) into a hold when the lag has not been past the threshold for
//! the whole window. Topping up a group that is part-way up is left as the table decides it.
//! The table never writes when C already equals the target, so a group still converging on
//! its capacity (instances not yet InService) is held, never written twice.

use crate::config::Thresholds;
use crate::window::{self, Checks};

/// What the policy knows of the lag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lag {
    /// A usable figure; `partial` when samples were discarded or Prometheus warned.
    Known { value: u64, partial: bool },
    /// Prometheus answered, but with nothing usable.
    Unknown,
}

/// What the policy needs to know of the group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub desired_capacity: i32,
    pub max_size: i32,
    pub suspended_processes: Vec<String>,
    /// `units` (or unset, which means units), `vcpu` or `memory-mib`.
    pub desired_capacity_type: Option<String>,
}

impl Group {
    fn is_suspended(&self, process: &str) -> bool {
        self.suspended_processes
            .iter()
            .any(|name| name.eq_ignore_ascii_case(process))
    }
}

/// The action a run takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Set MinSize and DesiredCapacity to `target`; `requested` is the configured capacity
    /// when MaxSize clamped it.
    ScaleOut { target: i32, requested: Option<i32> },
    /// Set MinSize and DesiredCapacity to `target`.
    ScaleIn { target: i32 },
    /// Nothing to do.
    Hold,
    /// Could not decide or act safely; nothing is written.
    Skip,
}

impl Action {
    /// The name used in the run summary.
    pub fn name(self) -> &'static str {
        match self {
            Action::ScaleOut { .. } => "scale_out",
            Action::ScaleIn { .. } => "scale_in",
            Action::Hold => "hold",
            Action::Skip => "skip",
        }
    }

    /// The capacity the group will have once the action is carried out.
    pub fn capacity_after(self, before: i32) -> i32 {
        match self {
            Action::ScaleOut { target, .. } | Action::ScaleIn { target } => target,
            Action::Hold | Action::Skip => before,
        }
    }
}

/// The decision and a sentence that explains it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub action: Action,
    pub reason: String,
}

fn decision(action: Action, reason: String) -> Decision {
    Decision { action, reason }
}

/// Decides what to do with the group on the current reading alone. Pure: no I/O, no clock.
pub fn decide(lag: Lag, group: &Group, thresholds: &Thresholds) -> Decision {
    decide_within(lag, &Checks::default(), group, thresholds)
}

/// Decides what to do with the group, a start or a return confirmed by its window's
/// [`Checks`]. Pure: no I/O, no clock.
pub fn decide_within(
    lag: Lag,
    windows: &Checks,
    group: &Group,
    thresholds: &Thresholds,
) -> Decision {
    let Thresholds {
        high,
        low,
        scale_out_capacity: requested_out,
        scale_in_capacity: standby,
    } = *thresholds;
    let c = group.desired_capacity;

    let Lag::Known {
        value: lag,
        partial,
    } = lag
    else {
        return decision(
            Action::Skip,
            "no usable lag: Prometheus returned no finite, non-negative sample".into(),
        );
    };
    if let Some(kind) = &group.desired_capacity_type {
        if !kind.eq_ignore_ascii_case("units") {
            return decision(
                Action::Skip,
                format!(
                    "the group's DesiredCapacityType is `{kind}`, so its capacity is not an \
                     instance count and SCALE_OUT_CAPACITY cannot be applied"
                ),
            );
        }
    }

    let active = requested_out.min(group.max_size);
    let scale_out = |reason: String| {
        let requested = (active < requested_out).then_some(requested_out);
        let reason = match requested {
            Some(requested) => format!(
                "{reason}; target {requested} clamped to the group's MaxSize {}",
                group.max_size
            ),
            None => reason,
        };
        decision(
            Action::ScaleOut {
                target: active,
                requested,
            },
            reason,
        )
    };
    let scale_in = |reason: String| decision(Action::ScaleIn { target: standby }, reason);
    let hold = |reason: String| decision(Action::Hold, reason);

    let table = if lag > high {
        if active <= standby {
            decision(
                Action::Skip,
                format!(
                    "lag {lag} > {high}, but the group's MaxSize {} leaves no room above \
                     standby capacity {standby}",
                    group.max_size
                ),
            )
        } else if c >= active {
            hold(format!(
                "lag {lag} > {high} and the group already has {c} instance(s) (active capacity \
                 {active})"
            ))
        } else {
            scale_out(format!("lag {lag} > {high} with {c} instance(s)"))
        }
    } else if lag < low {
        if c > standby {
            scale_in(format!(
                "lag {lag} < {low} with {c} instance(s): back to standby, Karpenter carries the \
                 load"
            ))
        } else if c == standby {
            hold(format!(
                "lag {lag} < {low} and the group is at standby capacity {standby}"
            ))
        } else {
            hold(format!(
                "lag {lag} < {low}; the group has {c} instance(s), below standby capacity \
                 {standby}, and the scaler never raises a group on low lag"
            ))
        }
    } else if c > standby && c < active {
        scale_out(format!(
            "lag {lag} is within {low}..={high} with {c} instance(s), below active capacity \
             {active}: topping up"
        ))
    } else if c >= active {
        hold(format!(
            "lag {lag} is within {low}..={high}; the group stays at {c} instance(s) until lag \
             falls below {low}"
        ))
    } else {
        hold(format!(
            "lag {lag} is within {low}..={high} with {c} instance(s); the group starts only when \
             lag exceeds {high}"
        ))
    };

    let table = window::gate(table, windows, c, standby);
    guard(table, group, partial)
}

/// Turns an action the group cannot carry out safely into a skip.
fn guard(decided: Decision, group: &Group, partial: bool) -> Decision {
    let skip = |why: String| decision(Action::Skip, format!("{}; {why}", decided.reason));
    match decided.action {
        Action::ScaleOut { .. } if group.is_suspended("Launch") => {
            skip("the group's Launch process is suspended, so it cannot scale out".into())
        }
        Action::ScaleIn { .. } if partial => skip(
            "scale-in withheld because the data may be partial (samples were discarded or \
             Prometheus warned)"
                .into(),
        ),
        Action::ScaleIn { .. } if group.is_suspended("Terminate") => {
            skip("the group's Terminate process is suspended, so it cannot scale in".into())
        }
        _ => decided,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    const HIGH: u64 = 10_000_000;
    const LOW: u64 = 100_000;
    const THRESHOLDS: Thresholds = Thresholds {
        high: HIGH,
        low: LOW,
        scale_out_capacity: 4,
        scale_in_capacity: 0,
    };

    /// A group of at most 10 instances, nothing suspended, capacity in instances.
    pub(crate) fn group(desired_capacity: i32) -> Group {
        Group {
            desired_capacity,
            max_size: 10,
            suspended_processes: vec![],
            desired_capacity_type: None,
        }
    }

    fn known(value: u64) -> Lag {
        Lag::Known {
            value,
            partial: false,
        }
    }

    fn out(target: i32) -> Action {
        Action::ScaleOut {
            target,
            requested: None,
        }
    }

    const IN: Action = Action::ScaleIn { target: 0 };

    #[test]
    fn follows_the_decision_table() {
        let rows: &[(u64, i32, Action, &str)] = &[
            (
                12_000_000,
                0,
                out(4),
                "row 1: very high lag at standby starts the group",
            ),
            (
                12_000_000,
                2,
                out(4),
                "explicit cell: very high lag with a partial group tops up",
            ),
            (
                5_000_000,
                2,
                out(4),
                "row 2: lag between thresholds tops up a partial group",
            ),
            (
                12_000_000,
                4,
                Action::Hold,
                "row 3: very high lag, already active",
            ),
            (
                12_000_000,
                6,
                Action::Hold,
                "row 3: very high lag, above active capacity",
            ),
            (40_000, 4, IN, "row 4: low lag returns an active group"),
            (
                40_000,
                7,
                IN,
                "row 4: low lag returns a group above active capacity",
            ),
            (
                40_000,
                2,
                IN,
                "explicit cell: low lag returns a partial group",
            ),
            (40_000, 0, Action::Hold, "row 5: low lag at standby"),
            (
                5_000_000,
                0,
                Action::Hold,
                "hysteresis: the group starts only on very high lag",
            ),
            (
                5_000_000,
                4,
                Action::Hold,
                "hysteresis: an active group drains before returning",
            ),
            (
                5_000_000,
                9,
                Action::Hold,
                "lag between thresholds above active capacity",
            ),
        ];
        for (lag, c, expected, why) in rows {
            let decided = decide(known(*lag), &group(*c), &THRESHOLDS);
            assert_eq!(decided.action, *expected, "{why}: {}", decided.reason);
        }
    }

    #[test]
    fn boundaries_are_strict_outside_and_inclusive_between() {
        let rows: &[(u64, i32, Action, &str)] = &[
            (HIGH, 0, Action::Hold, "lag equal to HIGH is not above it"),
            (HIGH + 1, 0, out(4), "one above HIGH starts the group"),
            (
                HIGH,
                2,
                out(4),
                "lag equal to HIGH is inside LOW..=HIGH: top up",
            ),
            (LOW, 4, Action::Hold, "lag equal to LOW is not below it"),
            (LOW - 1, 4, IN, "one below LOW returns the group"),
            (
                LOW,
                2,
                out(4),
                "lag equal to LOW is inside LOW..=HIGH: top up",
            ),
            (0, 4, IN, "zero lag returns the group"),
            (u64::MAX, 0, out(4), "the largest lag starts the group"),
        ];
        for (lag, c, expected, why) in rows {
            let decided = decide(known(*lag), &group(*c), &THRESHOLDS);
            assert_eq!(decided.action, *expected, "{why}: {}", decided.reason);
        }
    }

    #[test]
    fn equal_thresholds_leave_no_band_between() {
        let thresholds = Thresholds {
            high: 500,
            low: 500,
            ..THRESHOLDS
        };
        let rows: &[(u64, i32, Action)] = &[
            (501, 0, out(4)),
            (500, 0, Action::Hold),
            (500, 2, out(4)),
            (499, 4, IN),
        ];
        for (lag, c, expected) in rows {
            assert_eq!(
                decide(known(*lag), &group(*c), &thresholds).action,
                *expected,
                "lag {lag}"
            );
        }
    }

    #[test]
    fn a_nonzero_standby_capacity_is_respected() {
        let thresholds = Thresholds {
            scale_in_capacity: 1,
            ..THRESHOLDS
        };
        let rows: &[(u64, i32, Action, &str)] = &[
            (12_000_000, 1, out(4), "row 1 with IN = 1"),
            (
                12_000_000,
                0,
                out(4),
                "below standby with very high lag still starts the group",
            ),
            (
                40_000,
                4,
                Action::ScaleIn { target: 1 },
                "row 4 returns to IN, not zero",
            ),
            (40_000, 1, Action::Hold, "row 5 with IN = 1"),
            (
                40_000,
                0,
                Action::Hold,
                "below standby on low lag is left alone",
            ),
            (
                5_000_000,
                1,
                Action::Hold,
                "between thresholds at standby holds",
            ),
            (
                5_000_000,
                2,
                out(4),
                "between thresholds above standby tops up",
            ),
        ];
        for (lag, c, expected, why) in rows {
            let decided = decide(known(*lag), &group(*c), &thresholds);
            assert_eq!(decided.action, *expected, "{why}: {}", decided.reason);
        }
    }

    #[test]
    fn reason_states_lag_threshold_and_capacity() {
        let decided = decide(known(12_000_000), &group(0), &THRESHOLDS);
        assert_eq!(decided.reason, "lag 12000000 > 10000000 with 0 instance(s)");
    }

    #[test]
    fn skips_when_lag_is_unknown_whatever_the_group() {
        for c in [0, 2, 4] {
            let decided = decide(Lag::Unknown, &group(c), &THRESHOLDS);
            assert_eq!(decided.action, Action::Skip, "group at {c}");
            assert!(
                decided.reason.starts_with("no usable lag"),
                "{}",
                decided.reason
            );
        }
    }

    #[test]
    fn partial_data_allows_scale_out_but_not_scale_in() {
        let partial = |value| Lag::Known {
            value,
            partial: true,
        };

        assert_eq!(
            decide(partial(12_000_000), &group(0), &THRESHOLDS).action,
            out(4)
        );
        assert_eq!(
            decide(partial(5_000_000), &group(2), &THRESHOLDS).action,
            out(4)
        );
        let withheld = decide(partial(40_000), &group(4), &THRESHOLDS);
        assert_eq!(withheld.action, Action::Skip);
        assert!(
            withheld.reason.contains("data may be partial"),
            "{}",
            withheld.reason
        );
        assert_eq!(
            decide(partial(40_000), &group(0), &THRESHOLDS).action,
            Action::Hold
        );
    }

    #[test]
    fn scale_out_is_clamped_to_max_size_and_says_so() {
        let small = Group {
            max_size: 3,
            ..group(0)
        };

        let decided = decide(known(12_000_000), &small, &THRESHOLDS);

        assert_eq!(
            decided.action,
            Action::ScaleOut {
                target: 3,
                requested: Some(4)
            }
        );
        assert!(
            decided.reason.contains("clamped to the group's MaxSize 3"),
            "{}",
            decided.reason
        );
    }

    #[test]
    fn a_group_at_its_clamped_maximum_holds_on_high_lag() {
        let full = Group {
            max_size: 3,
            ..group(3)
        };
        assert_eq!(
            decide(known(12_000_000), &full, &THRESHOLDS).action,
            Action::Hold
        );
        assert_eq!(
            decide(known(5_000_000), &full, &THRESHOLDS).action,
            Action::Hold
        );
        assert_eq!(decide(known(40_000), &full, &THRESHOLDS).action, IN);
    }

    #[test]
    fn skips_scale_out_when_max_size_leaves_no_room() {
        let closed = Group {
            max_size: 0,
            ..group(0)
        };
        let decided = decide(known(12_000_000), &closed, &THRESHOLDS);
        assert_eq!(decided.action, Action::Skip);
        assert!(
            decided.reason.contains("MaxSize 0 leaves no room"),
            "{}",
            decided.reason
        );
    }

    #[test]
    fn suspended_processes_block_only_the_action_they_serve() {
        let suspended = |process: &str, c| Group {
            suspended_processes: vec![process.to_owned()],
            ..group(c)
        };
        let rows: &[(u64, Group, Action, &str)] = &[
            (
                12_000_000,
                suspended("Launch", 0),
                Action::Skip,
                "Launch blocks scale-out",
            ),
            (
                40_000,
                suspended("Launch", 4),
                IN,
                "Launch does not block scale-in",
            ),
            (
                40_000,
                suspended("Terminate", 4),
                Action::Skip,
                "Terminate blocks scale-in",
            ),
            (
                12_000_000,
                suspended("Terminate", 0),
                out(4),
                "Terminate does not block scale-out",
            ),
            (
                12_000_000,
                suspended("AZRebalance", 0),
                out(4),
                "other processes do not matter",
            ),
            (
                40_000,
                suspended("Terminate", 0),
                Action::Hold,
                "a hold needs no process",
            ),
        ];
        for (lag, group, expected, why) in rows {
            let decided = decide(known(*lag), group, &THRESHOLDS);
            assert_eq!(decided.action, *expected, "{why}: {}", decided.reason);
        }
        let reason = decide(known(40_000), &suspended("Terminate", 4), &THRESHOLDS).reason;
        assert!(
            reason.contains("Terminate process is suspended"),
            "{reason}"
        );
    }

    #[test]
    fn skips_groups_whose_capacity_is_not_counted_in_instances() {
        for kind in ["vcpu", "memory-mib"] {
            let weighted = Group {
                desired_capacity_type: Some(kind.into()),
                ..group(0)
            };
            let decided = decide(known(12_000_000), &weighted, &THRESHOLDS);
            assert_eq!(decided.action, Action::Skip, "{kind}");
            assert!(
                decided.reason.contains("not an instance count"),
                "{}",
                decided.reason
            );
        }
        let units = Group {
            desired_capacity_type: Some("units".into()),
            ..group(0)
        };
        assert_eq!(
            decide(known(12_000_000), &units, &THRESHOLDS).action,
            out(4)
        );
    }

    #[test]
    fn capacity_after_follows_the_action() {
        assert_eq!(out(4).capacity_after(0), 4);
        assert_eq!(IN.capacity_after(4), 0);
        assert_eq!(Action::Hold.capacity_after(3), 3);
        assert_eq!(Action::Skip.capacity_after(3), 3);
    }
}
