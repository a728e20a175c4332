use warrant_jose::Algorithm;

use super::*;
use crate::TenantName;

const J: u64 = 300;
const L: u64 = 3600;
const T: Timing = Timing {
    jwks_max_age: J,
    max_token_lifetime: L,
};

fn t(s: i64) -> Timestamp {
    Timestamp::from_secs(1_000_000 + s)
}

fn key(kid: &str, act: i64, ret: Option<i64>, rem: Option<i64>) -> SigningKeyRecord {
    SigningKeyRecord {
        kid: kid.into(),
        tenant: TenantName::system(),
        alg: Algorithm::Es256,
        private_wrapped: Vec::new(),
        hsm_module: None,
        hsm_label: None,
        created_at: t(act.min(0)),
        activates_at: t(act),
        retires_at: ret.map(t),
        removed_at: rem.map(t),
    }
}

fn apply(keys: &mut Vec<SigningKeyRecord>, plan: &Plan, now: Timestamp, kid: &str) {
    for u in &plan.updates {
        let k = keys.iter_mut().find(|k| k.kid == u.kid).unwrap();
        k.retires_at = u.retires_at;
        k.removed_at = u.removed_at;
    }
    if let Some(act) = plan.new_key_activates_at {
        keys.push(SigningKeyRecord {
            created_at: now,
            activates_at: act,
            ..key(kid, 0, None, None)
        });
    }
}

#[test]
fn normal_rotation_publishes_for_j_plus_s_and_keeps_the_old_key_for_l_plus_s() {
    let keys = vec![key("k", 0, None, None)];
    let now = t(1000);
    let Rotation::New(plan) = rotate(&keys, now, T, false) else {
        panic!("expected a new key")
    };
    let act = now.plus_secs(300 + 60);
    assert_eq!(plan.new_key_activates_at, Some(act));
    assert_eq!(
        plan.updates,
        vec![KeyTimes {
            kid: "k".into(),
            retires_at: Some(act),
            removed_at: Some(act.plus_secs(3600 + 60)),
        }]
    );
}

#[test]
fn normal_rotation_is_idempotent_while_a_successor_waits() {
    let mut keys = vec![key("k", 0, None, None)];
    let Rotation::New(plan) = rotate(&keys, t(10), T, false) else {
        panic!()
    };
    apply(&mut keys, &plan, t(10), "n");
    match rotate(&keys, t(20), T, false) {
        Rotation::Pending(p) => assert_eq!(p.kid, "n"),
        other => panic!("expected the pending key, got {other:?}"),
    }
    // Once it signs, a new rotation plans a new key again.
    assert!(matches!(
        rotate(&keys, t(10 + 360), T, false),
        Rotation::New(_)
    ));
}

#[test]
fn immediate_rotation_signs_now_and_drops_a_waiting_successor() {
    let mut keys = vec![key("k", 0, None, None)];
    let Rotation::New(plan) = rotate(&keys, t(10), T, false) else {
        panic!()
    };
    apply(&mut keys, &plan, t(10), "n");
    let Rotation::New(plan) = rotate(&keys, t(20), T, true) else {
        panic!()
    };
    assert_eq!(plan.new_key_activates_at, Some(t(20)));
    let k = plan.updates.iter().find(|u| u.kid == "k").unwrap();
    assert_eq!(k.retires_at, Some(t(20)));
    assert_eq!(k.removed_at, Some(t(20 + 3660)));
    let n = plan.updates.iter().find(|u| u.kid == "n").unwrap();
    assert_eq!(n.removed_at, Some(t(20)));
    apply(&mut keys, &plan, t(20), "m");
    assert_eq!(signing_key(&keys, t(20)).unwrap().kid, "m");
    assert_eq!(keys[0].state_at(t(20)), KeyState::Retired);
}

#[test]
fn a_tenant_with_no_signing_key_gets_one_at_once() {
    let keys = vec![key("k", 0, Some(5), Some(6))];
    let Rotation::New(plan) = rotate(&keys, t(10), T, false) else {
        panic!()
    };
    assert_eq!(plan.new_key_activates_at, Some(t(10)));
    assert!(plan.updates.is_empty());
}

#[test]
fn revoking_the_active_key_removes_it_now_and_activates_a_replacement() {
    let mut keys = vec![
        key("old", -5000, Some(-10), Some(4000)),
        key("k", -10, None, None),
    ];
    let plan = revoke(&keys, "k", t(0), T).unwrap();
    assert_eq!(plan.new_key_activates_at, Some(t(0)));
    assert_eq!(
        plan.updates,
        vec![KeyTimes {
            kid: "k".into(),
            retires_at: Some(t(0)),
            removed_at: Some(t(0)),
        }]
    );
    apply(&mut keys, &plan, t(0), "r");
    assert_eq!(keys[1].state_at(t(0)), KeyState::Removed);
    assert_eq!(signing_key(&keys, t(0)).unwrap().kid, "r");
    // The retired key was not touched.
    assert_eq!(keys[0].removed_at, Some(t(4000)));
}

#[test]
fn revoking_a_waiting_successor_removes_it_and_the_active_key_keeps_signing() {
    let mut keys = vec![key("k", 0, None, None)];
    let Rotation::New(plan) = rotate(&keys, t(10), T, false) else {
        panic!()
    };
    apply(&mut keys, &plan, t(10), "n");
    let plan = revoke(&keys, "n", t(20), T).unwrap();
    assert_eq!(plan.new_key_activates_at, None);
    apply(&mut keys, &plan, t(20), "-");
    assert_eq!(keys[0].retires_at, None);
    assert_eq!(keys[0].removed_at, None);
    assert_eq!(keys[1].state_at(t(20)), KeyState::Removed);
    assert_eq!(signing_key(&keys, t(100_000)).unwrap().kid, "k");
}

#[test]
fn revoking_the_last_key_always_makes_a_replacement() {
    let keys = vec![key("k", 0, None, None)];
    let plan = revoke(&keys, "k", t(1), T).unwrap();
    assert_eq!(plan.new_key_activates_at, Some(t(1)));
    // A lone waiting key (nothing signs): removed, and a replacement signs now.
    let keys = vec![key("n", 100, None, None)];
    let plan = revoke(&keys, "n", t(1), T).unwrap();
    assert_eq!(plan.new_key_activates_at, Some(t(1)));
}

#[test]
fn revoking_a_retired_key_only_removes_it() {
    let keys = vec![
        key("old", 0, Some(10), Some(5000)),
        key("k", 10, None, None),
    ];
    let plan = revoke(&keys, "old", t(20), T).unwrap();
    assert_eq!(plan.new_key_activates_at, None);
    assert_eq!(
        plan.updates,
        vec![KeyTimes {
            kid: "old".into(),
            retires_at: Some(t(10)),
            removed_at: Some(t(20)),
        }]
    );
}

#[test]
fn revoking_unknown_or_removed_keys_is_refused() {
    let keys = vec![key("gone", 0, Some(1), Some(2)), key("k", 1, None, None)];
    assert_eq!(revoke(&keys, "x", t(5), T), Err(RevokeRefusal::Unknown));
    assert_eq!(
        revoke(&keys, "gone", t(5), T),
        Err(RevokeRefusal::AlreadyRemoved)
    );
}

#[test]
fn scheduled_rotation_is_due_so_that_the_successor_activates_on_schedule() {
    let period = 86_400;
    let keys = vec![key("k", 0, None, None)];
    let lead = 360;
    assert!(!rotation_due(&keys, period, t(period as i64 - lead - 1), T));
    assert!(rotation_due(&keys, period, t(period as i64 - lead), T));
    let mut keys = keys;
    let now = t(period as i64 - lead);
    let Rotation::New(plan) = rotate(&keys, now, T, false) else {
        panic!()
    };
    assert_eq!(plan.new_key_activates_at, Some(t(period as i64)));
    apply(&mut keys, &plan, now, "n");
    // A successor waits: not due again.
    assert!(!rotation_due(&keys, period, t(period as i64), T));
}

#[test]
fn rotation_period_bounds() {
    assert_eq!(T.min_rotation_period(), 720);
    assert!(T.check_rotation_period(719).is_err());
    assert!(T.check_rotation_period(720).is_ok());
    assert!(T.check_rotation_period(365 * 86_400).is_ok());
    assert!(T.check_rotation_period(365 * 86_400 + 1).is_err());
}

#[test]
fn next_boundary_is_the_earliest_future_time() {
    let keys = vec![
        key("old", 0, Some(10), Some(5000)),
        key("k", 10, Some(400), Some(4060)),
        key("n", 400, None, None),
    ];
    assert_eq!(next_boundary(&keys, t(20)), Some(t(400)));
    assert_eq!(next_boundary(&keys, t(400)), Some(t(4060)));
    assert_eq!(next_boundary(&keys, t(5000)), None);
}
