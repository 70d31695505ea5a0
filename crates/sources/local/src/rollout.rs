//! The Deployment controller's RollingUpdate, as Kubernetes runs it: a Deployment owns one
//! ReplicaSet per pod template it has had (its revision history, each with
//! `deployment.kubernetes.io/revision`), and each step scales the new ReplicaSet up within
//! `maxSurge` and the old ones down within `maxUnavailable` — counting only pods available
//! for `minReadySeconds`. A new revision whose pods never become available (a crash loop)
//! therefore never takes the old pods' place: they keep serving, as in a cluster. No
//! progress for `progressDeadlineSeconds` sets `Progressing=False ProgressDeadlineExceeded`.
//!
//! This module is the pure part: [`plan`] decides the ReplicaSets' replicas from what the
//! pods are doing, [`Rollout::step`] keeps each Deployment's progress clock; the runtime
//! applies the result to its pods.

use std::time::{Duration, Instant};

/// The revision annotation the Deployment controller puts on ReplicaSets and Deployments.
pub const REVISION: &str = "deployment.kubernetes.io/revision";
/// What `kubectl rollout history` shows as CHANGE-CAUSE.
pub const CHANGE_CAUSE: &str = "kubernetes.io/change-cause";

/// One ReplicaSet of a Deployment, as the step sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Set {
    pub name: String,
    pub revision: u64,
    /// Replicas the ReplicaSet is asked for.
    pub replicas: i32,
    /// Its pods that are available (ready for `minReadySeconds`).
    pub available: i32,
}

/// The rolling update's bounds, resolved against the replica count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    pub max_surge: i32,
    pub max_unavailable: i32,
}

/// A bound given as a count or a percentage (`25%`), as the API takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntOrPercent {
    Int(i32),
    Percent(String),
}

fn resolve(v: Option<&IntOrPercent>, replicas: i32, round_up: bool) -> Result<i32, String> {
    match v {
        None => resolve(
            Some(&IntOrPercent::Percent("25%".into())),
            replicas,
            round_up,
        ),
        Some(IntOrPercent::Int(n)) if *n >= 0 => Ok(*n),
        Some(IntOrPercent::Int(n)) => Err(format!("{n} is negative")),
        Some(IntOrPercent::Percent(p)) => {
            let pct: i64 = p
                .strip_suffix('%')
                .and_then(|n| n.parse().ok())
                .filter(|n| *n >= 0)
                .ok_or_else(|| format!("{p:?} is not a count or a percentage like 25%"))?;
            let scaled = i64::from(replicas.max(0)) * pct;
            let n = if round_up {
                (scaled + 99) / 100
            } else {
                scaled / 100
            };
            Ok(i32::try_from(n).unwrap_or(i32::MAX))
        }
    }
}

impl Bounds {
    /// `maxSurge` rounds up and `maxUnavailable` down, as the controller resolves them; both
    /// zero would deadlock, so `maxUnavailable` is then 1.
    pub fn resolve(
        replicas: i32,
        max_surge: Option<&IntOrPercent>,
        max_unavailable: Option<&IntOrPercent>,
    ) -> Result<Bounds, String> {
        let surge = resolve(max_surge, replicas, true).map_err(|e| format!("maxSurge: {e}"))?;
        let mut unavailable = resolve(max_unavailable, replicas, false)
            .map_err(|e| format!("maxUnavailable: {e}"))?;
        if surge == 0 && unavailable == 0 {
            unavailable = 1;
        }
        Ok(Bounds {
            max_surge: surge,
            max_unavailable: unavailable.min(replicas.max(0)),
        })
    }
}

/// One change of a ReplicaSet's replicas (the `ScalingReplicaSet` event says it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scale {
    pub set: String,
    pub from: i32,
    pub to: i32,
}

impl Scale {
    /// The event's message, in the controller's words.
    pub fn message(&self) -> String {
        let dir = if self.to > self.from { "up" } else { "down" };
        format!(
            "Scaled {dir} replica set {} from {} to {}",
            self.set, self.from, self.to
        )
    }
}

/// The scalings one step makes: the new ReplicaSet `new` towards `replicas` within the
/// surge, then old ones (`old`, oldest first) down as far as availability allows —
/// unavailable old pods first, since removing them costs nothing.
pub fn plan(replicas: i32, bounds: Bounds, new: &Set, old: &[Set]) -> Vec<Scale> {
    let mut out = Vec::new();
    let all = |new: &Set, old: &[Set]| new.replicas + old.iter().map(|s| s.replicas).sum::<i32>();
    let mut new = new.clone();
    let mut old = old.to_vec();
    // The new ReplicaSet.
    if new.replicas > replicas {
        out.push(Scale {
            set: new.name.clone(),
            from: new.replicas,
            to: replicas,
        });
        new.replicas = replicas;
    } else if new.replicas < replicas {
        let room = replicas + bounds.max_surge - all(&new, &old);
        let up = room.min(replicas - new.replicas);
        if up > 0 {
            out.push(Scale {
                set: new.name.clone(),
                from: new.replicas,
                to: new.replicas + up,
            });
            new.replicas += up;
        }
    }
    // The old ones.
    if old.iter().all(|s| s.replicas == 0) {
        return out;
    }
    let min_available = replicas - bounds.max_unavailable;
    let new_unavailable = (new.replicas - new.available).max(0);
    let mut budget = all(&new, &old) - min_available - new_unavailable;
    // Unavailable old pods go first: they serve nobody.
    for s in old.iter_mut() {
        if budget <= 0 {
            break;
        }
        let unhealthy = (s.replicas - s.available).max(0).min(budget);
        if unhealthy > 0 {
            out.push(Scale {
                set: s.name.clone(),
                from: s.replicas,
                to: s.replicas - unhealthy,
            });
            s.replicas -= unhealthy;
            budget -= unhealthy;
        }
    }
    // Then available ones, as long as enough stay available.
    let available = new.available.min(new.replicas)
        + old.iter().map(|s| s.available.min(s.replicas)).sum::<i32>();
    let mut down = available - min_available;
    for s in old.iter_mut() {
        if down <= 0 {
            break;
        }
        let n = s.replicas.min(down);
        if n > 0 {
            // Merge with an unhealthy scale-down of the same set in this step.
            match out.iter_mut().find(|x| x.set == s.name && x.to < x.from) {
                Some(x) => x.to -= n,
                None => out.push(Scale {
                    set: s.name.clone(),
                    from: s.replicas,
                    to: s.replicas - n,
                }),
            }
            s.replicas -= n;
            down -= n;
        }
    }
    out
}

/// Where a Deployment's rollout stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Every replica is the new revision and available.
    Complete,
    /// Still moving: since `since`, the last time it got further.
    Progressing { since: Instant },
    /// No progress for the deadline: `Progressing=False ProgressDeadlineExceeded`.
    DeadlineExceeded,
}

/// What one step observed of a Deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observed {
    pub replicas: i32,
    /// Replicas of the new revision, and how many of them are available.
    pub updated: i32,
    pub updated_available: i32,
    /// Replicas of the old revisions.
    pub old: i32,
}

impl Observed {
    fn complete(&self) -> bool {
        self.updated == self.replicas && self.updated_available >= self.replicas && self.old == 0
    }
}

/// A Deployment's progress clock: explicit states, stepped with what each reconcile saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rollout {
    pub progress: Progress,
    last: Option<Observed>,
}

impl Rollout {
    pub fn new(now: Instant) -> Rollout {
        Rollout {
            progress: Progress::Progressing { since: now },
            last: None,
        }
    }

    /// A new template was applied: the clock starts again.
    pub fn restart(&mut self, now: Instant) {
        *self = Rollout::new(now);
    }

    /// Advances with what was observed at `now`; `deadline` is `progressDeadlineSeconds`
    /// on the runtime's clock.
    pub fn step(&mut self, seen: Observed, now: Instant, deadline: Duration) -> Progress {
        // Progress, as the controller counts it: more updated or more available new pods.
        let moved = self.last.is_none_or(|l| {
            seen.updated > l.updated || seen.updated_available > l.updated_available
        });
        self.last = Some(seen);
        self.progress = match self.progress {
            _ if seen.complete() => Progress::Complete,
            Progress::Complete => Progress::Progressing { since: now },
            Progress::Progressing { .. } | Progress::DeadlineExceeded if moved => {
                Progress::Progressing { since: now }
            }
            Progress::Progressing { since } if now.duration_since(since) >= deadline => {
                Progress::DeadlineExceeded
            }
            p => p,
        };
        self.progress
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(name: &str, replicas: i32, available: i32) -> Set {
        Set {
            name: name.into(),
            revision: 0,
            replicas,
            available,
        }
    }

    fn bounds(replicas: i32) -> Bounds {
        Bounds::resolve(replicas, None, None).unwrap()
    }

    #[test]
    fn the_default_bounds_are_a_quarter_rounded_as_the_controller_rounds() {
        assert_eq!(
            bounds(1),
            Bounds {
                max_surge: 1,
                max_unavailable: 0
            }
        );
        assert_eq!(
            bounds(10),
            Bounds {
                max_surge: 3,
                max_unavailable: 2
            }
        );
        let zero = IntOrPercent::Int(0);
        assert_eq!(
            Bounds::resolve(4, Some(&zero), Some(&zero))
                .unwrap()
                .max_unavailable,
            1
        );
        assert!(Bounds::resolve(4, Some(&IntOrPercent::Percent("x".into())), None).is_err());
    }

    #[test]
    fn one_replica_surges_first_and_the_old_pod_goes_only_when_the_new_one_is_available() {
        let b = bounds(1);
        // Step 1: the new set goes to 1 beside the old one.
        let s = plan(1, b, &set("web-new", 0, 0), &[set("web-old", 1, 1)]);
        assert_eq!(
            s,
            [Scale {
                set: "web-new".into(),
                from: 0,
                to: 1
            }]
        );
        assert_eq!(s[0].message(), "Scaled up replica set web-new from 0 to 1");
        // The new pod is not available (crash-looping): nothing more, the old pod serves.
        assert!(plan(1, b, &set("web-new", 1, 0), &[set("web-old", 1, 1)]).is_empty());
        // Once it is, the old set goes to 0.
        assert_eq!(
            plan(1, b, &set("web-new", 1, 1), &[set("web-old", 1, 1)]),
            [Scale {
                set: "web-old".into(),
                from: 1,
                to: 0
            }]
        );
    }

    #[test]
    fn ten_replicas_roll_in_steps_that_keep_eight_available() {
        let b = bounds(10);
        let mut new = set("n", 0, 0);
        let mut old = vec![set("o", 10, 10)];
        for _ in 0..20 {
            let steps = plan(10, b, &new, &old);
            if steps.is_empty() {
                break;
            }
            for s in steps {
                let target = if s.set == "n" { &mut new } else { &mut old[0] };
                target.replicas = s.to;
                target.available = target.available.min(s.to);
            }
            // Every pod of the step becomes available before the next.
            assert!(new.replicas + old[0].replicas <= 13);
            assert!(new.available + old[0].available >= 8);
            new.available = new.replicas;
        }
        assert_eq!((new.replicas, old[0].replicas), (10, 0));
    }

    #[test]
    fn unavailable_old_pods_are_removed_first() {
        let b = bounds(4);
        // Old: 4 pods, 2 crash-looping; new: 1 not yet available, the surge used. Of the
        // 5 pods 3 must stay and the new one counts as missing: 1 may go, a broken one.
        let s = plan(4, b, &set("n", 1, 0), &[set("o", 4, 2)]);
        assert_eq!(
            s,
            [Scale {
                set: "o".into(),
                from: 4,
                to: 3
            }]
        );
        // Then the new set may surge again, and available old pods stay: only 2 are.
        let s = plan(4, b, &set("n", 1, 0), &[set("o", 3, 2)]);
        assert!(s.iter().all(|x| x.set == "n"), "{s:?}");
    }

    #[test]
    fn fewer_replicas_scale_the_new_set_down() {
        let s = plan(1, bounds(1), &set("n", 3, 3), &[]);
        assert_eq!(
            s,
            [Scale {
                set: "n".into(),
                from: 3,
                to: 1
            }]
        );
    }

    #[test]
    fn no_progress_for_the_deadline_is_exceeded_and_progress_restarts_the_clock() {
        let t0 = Instant::now();
        let deadline = Duration::from_secs(10);
        let mut r = Rollout::new(t0);
        let stuck = Observed {
            replicas: 1,
            updated: 1,
            updated_available: 0,
            old: 1,
        };
        assert!(matches!(
            r.step(stuck, t0, deadline),
            Progress::Progressing { .. }
        ));
        assert!(matches!(
            r.step(stuck, t0 + Duration::from_secs(5), deadline),
            Progress::Progressing { .. }
        ));
        assert_eq!(
            r.step(stuck, t0 + Duration::from_secs(11), deadline),
            Progress::DeadlineExceeded
        );
        // It stays so until something moves.
        assert_eq!(
            r.step(stuck, t0 + Duration::from_secs(30), deadline),
            Progress::DeadlineExceeded
        );
        let done = Observed {
            updated_available: 1,
            old: 0,
            ..stuck
        };
        assert_eq!(
            r.step(done, t0 + Duration::from_secs(31), deadline),
            Progress::Complete
        );
        r.restart(t0 + Duration::from_secs(40));
        assert!(matches!(r.progress, Progress::Progressing { .. }));
    }
}
