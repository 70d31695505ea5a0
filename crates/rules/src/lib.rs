//! crashscope's alert rules: the YAML rule file ([`rule`]), the restart metrics computed from
//! restart samples ([`metric`]), evaluation of rules at an instant ([`evaluate`]), and the
//! life of an alert — pending, firing, resolved — as a state machine ([`alert`]).

pub mod alert;
pub mod evaluate;
pub mod group;
pub mod metric;
pub mod receiver;
pub mod rule;
pub mod silence;

pub use alert::{AlertState, Effect, Timing};
pub use evaluate::{evaluate, Inputs, Observation};
pub use group::GroupKey;
pub use metric::{restarts, series, values, Restart, Series};
pub use receiver::{Receiver, Target};
pub use rule::{GroupBy, MetricName, Rule, RuleError, RuleFile};
pub use silence::{Matcher, Silence};
