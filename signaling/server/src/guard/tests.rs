//! The limiter in simulated time: time is an argument, nothing sleeps.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::AtomicUsize;

use super::*;

const A: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
const B: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));

fn limiter() -> Limiter {
    Limiter::new(GuardConfig::default())
}

/// One failed password check of `room` from `addr` at `now`; panics when refused.
fn fail(l: &mut Limiter, addr: IpAddr, room: &str, now: Millis) {
    l.begin(addr, room, now).expect("check allowed");
    l.finish(addr, room, false, now);
}

fn retry_of(d: Denied) -> Millis {
    match d {
        Denied::Address { retry_ms }
        | Denied::Room { retry_ms }
        | Denied::Creations { retry_ms } => retry_ms,
        other => panic!("no retry time in {other:?}"),
    }
}

fn close(a: Millis, b: Millis) -> bool {
    (a - b).abs() < 1e-6
}

#[test]
fn five_failures_lock_an_address_out_for_a_doubling_time() {
    let mut l = limiter();
    let mut now = 0.0;
    let mut lockouts = Vec::new();
    for _ in 0..12 {
        for i in 0..ADDR_FAILURES {
            // A different room each time: the address is what counts.
            fail(&mut l, A, &format!("room-{i}"), now);
            now += 10.0;
        }
        let denied = l.begin(A, "room-x", now).unwrap_err();
        let retry = retry_of(denied);
        assert!(matches!(denied, Denied::Address { .. }));
        lockouts.push(retry + 10.0);
        // Refused for as long as the lockout lasts, and no check is under way.
        assert!(l.begin(A, "room-x", now + retry - 1.0).is_err());
        now += retry;
    }
    assert!(close(lockouts[0], 2000.0), "{lockouts:?}");
    assert!(close(lockouts[1], 4000.0), "{lockouts:?}");
    assert!(close(lockouts[2], 8000.0), "{lockouts:?}");
    assert!(close(lockouts[8], 512_000.0), "{lockouts:?}");
    // Capped.
    assert!(close(lockouts[9], ADDR_MAX_LOCKOUT_MS), "{lockouts:?}");
    assert!(close(lockouts[11], ADDR_MAX_LOCKOUT_MS), "{lockouts:?}");
    // Another address is not affected.
    assert!(l.begin(B, "room-x", now).is_ok());
}

#[test]
fn failures_outside_the_window_do_not_add_up() {
    let mut l = limiter();
    for i in 0..4 {
        fail(&mut l, A, "r", f64::from(i));
    }
    // The window started at 0: a minute later the count starts over.
    for i in 0..4 {
        fail(&mut l, A, "r", WINDOW_MS + f64::from(i));
    }
    assert!(l.begin(A, "r", WINDOW_MS + 10.0).is_ok());
}

#[test]
fn a_success_resets_nothing() {
    let mut l = limiter();
    for i in 0..4 {
        fail(&mut l, A, "theirs", f64::from(i));
    }
    // The attacker knows the password of a room of its own.
    l.begin(A, "mine", 5.0).unwrap();
    l.finish(A, "mine", true, 5.0);
    fail(&mut l, A, "theirs", 6.0);
    assert!(matches!(
        l.begin(A, "theirs", 7.0),
        Err(Denied::Address { .. })
    ));
}

#[test]
fn checks_under_way_count_until_they_end() {
    let mut l = limiter();
    for _ in 0..ADDR_FAILURES {
        l.begin(A, "r", 0.0).unwrap();
    }
    // Many connections from one address: no more than the allowance at once.
    assert_eq!(l.begin(A, "r", 0.0), Err(Denied::Pending));
    // The same for a room, whatever the addresses.
    for i in 0..ROOM_FAILURES {
        l.begin(IpAddr::V4(Ipv4Addr::new(10, 0, 0, i as u8)), "busy", 0.0)
            .unwrap();
    }
    assert_eq!(l.begin(B, "busy", 0.0), Err(Denied::Pending));
    l.abandon(A, "r");
    assert!(l.begin(A, "r", 0.0).is_ok());
    for _ in 0..ADDR_FAILURES {
        l.finish(A, "r", true, 1.0);
    }
    assert!(l.begin(A, "r", 1.0).is_ok());
}

#[test]
fn a_room_guessed_at_from_many_addresses_is_locked_too() {
    let mut l = limiter();
    for i in 0..ROOM_FAILURES {
        let addr = IpAddr::V4(Ipv4Addr::new(10, 0, (i / 256) as u8, (i % 256) as u8));
        fail(&mut l, addr, "vault", f64::from(i));
    }
    let fresh = IpAddr::V4(Ipv4Addr::new(10, 9, 9, 9));
    let denied = l.begin(fresh, "vault", 100.0).unwrap_err();
    assert!(matches!(denied, Denied::Room { .. }));
    assert!(close(retry_of(denied), 2000.0 - (100.0 - 19.0)));
    // Other rooms are not.
    assert!(l.begin(fresh, "lobby", 100.0).is_ok());
    // A room's lockout is capped lower than an address's.
    let mut now = 10_000.0;
    for round in 0..10u32 {
        for i in 0..ROOM_FAILURES {
            let addr = IpAddr::V4(Ipv4Addr::new(10, 1, round as u8, i as u8));
            fail(&mut l, addr, "vault", now);
        }
        let retry = retry_of(l.begin(fresh, "vault", now).unwrap_err());
        assert!(retry <= ROOM_MAX_LOCKOUT_MS);
        now += retry;
    }
    for i in 0..ROOM_FAILURES {
        fail(
            &mut l,
            IpAddr::V4(Ipv4Addr::new(10, 2, 0, i as u8)),
            "vault",
            now,
        );
    }
    let last = retry_of(l.begin(fresh, "vault", now).unwrap_err());
    assert!(close(last, ROOM_MAX_LOCKOUT_MS));
}

#[test]
fn a_quiet_address_is_forgiven() {
    let mut l = limiter();
    let mut now = 0.0;
    for _ in 0..3 {
        for _ in 0..ADDR_FAILURES {
            fail(&mut l, A, "r", now);
        }
        now += retry_of(l.begin(A, "r", now).unwrap_err());
    }
    // Third lockout was 8 s; after a long quiet time the next is 2 s again.
    now += FORGIVE_MS;
    for _ in 0..ADDR_FAILURES {
        fail(&mut l, A, "r", now);
    }
    assert!(close(retry_of(l.begin(A, "r", now).unwrap_err()), 2000.0));
    // And once forgiven, it is forgotten.
    l.prune(now + 2000.0 + FORGIVE_MS);
    assert_eq!(l.tracked(), (0, 0, 0));
}

#[test]
fn tokens_and_passwords_share_one_count_per_address() {
    let mut l = limiter();
    for i in 0..ADDR_FAILURES {
        assert!(l.token_allowed(A, f64::from(i)).is_ok());
        l.token_failed(A, f64::from(i));
    }
    assert!(matches!(
        l.token_allowed(A, 10.0),
        Err(Denied::Address { .. })
    ));
    assert!(matches!(l.begin(A, "r", 10.0), Err(Denied::Address { .. })));
    // Bad tokens do not lock the room.
    assert!(l.begin(B, "r", 10.0).is_ok());
    // And a room's lockout does not stop tokens.
    let mut l = limiter();
    for i in 0..ROOM_FAILURES {
        fail(
            &mut l,
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, i as u8)),
            "r",
            0.0,
        );
    }
    assert!(matches!(l.begin(B, "r", 1.0), Err(Denied::Room { .. })));
    assert!(l.token_allowed(B, 1.0).is_ok());
}

#[test]
fn room_creation_is_a_bucket_per_address() {
    let mut l = limiter();
    let burst = ROOM_CREATE_BURST as usize;
    assert_eq!((0..100).filter(|_| l.create(A, 0.0).is_ok()).count(), burst);
    let denied = l.create(A, 0.0).unwrap_err();
    assert!(matches!(denied, Denied::Creations { .. }));
    let every = 60_000.0 / ROOM_CREATE_PER_MINUTE;
    assert!(close(retry_of(denied), every));
    assert!(l.create(B, 0.0).is_ok());
    assert!(l.create(A, every - 1.0).is_err());
    assert!(l.create(A, every + 1.0).is_ok());
    // A full bucket is forgotten.
    l.prune(every + 1000.0 + 60_000.0 * ROOM_CREATE_BURST / ROOM_CREATE_PER_MINUTE);
    assert_eq!(l.tracked().2, 0);

    let mut off = Limiter::new(GuardConfig {
        create_per_minute: 0.0,
        ..GuardConfig::default()
    });
    assert!((0..1000).all(|_| off.create(A, 0.0).is_ok()));
    assert_eq!(off.tracked().2, 0);
}

#[test]
fn tables_are_bounded() {
    let mut l = Limiter::new(GuardConfig {
        max_tracked: 3,
        ..GuardConfig::default()
    });
    for i in 0..3u8 {
        fail(&mut l, IpAddr::V4(Ipv4Addr::new(10, 0, 0, i)), "r", 0.0);
    }
    let newcomer = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 99));
    assert_eq!(l.begin(newcomer, "r", 1.0), Err(Denied::Busy));
    // Once the old ones are quiet they make way.
    assert!(l.begin(newcomer, "r", WINDOW_MS + 1.0).is_ok());
    assert!(l.tracked().0 <= 3);
}

#[test]
fn ipv6_counts_by_its_64_and_mapped_ipv4_as_ipv4() {
    let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
    let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
    let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
    assert_eq!(addr_key(a), addr_key(b));
    assert_ne!(addr_key(a), addr_key(c));
    assert_eq!(
        addr_key(IpAddr::V6(Ipv4Addr::new(192, 0, 2, 1).to_ipv6_mapped())),
        A
    );
    assert_eq!(addr_key(A), A);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_bounds_concurrency_and_refuses_past_its_queue() {
    let pool = Arc::new(HashPool::new(2));
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let (release, gate) = std::sync::mpsc::channel::<()>();
    let gate = Arc::new(Mutex::new(gate));
    let mut tasks = Vec::new();
    for _ in 0..(2 + 2 * QUEUE_PER_PERMIT) {
        let (pool, running, most, gate) =
            (pool.clone(), running.clone(), most.clone(), gate.clone());
        tasks.push(tokio::spawn(async move {
            pool.run(move || {
                let now = running.fetch_add(1, SeqCst) + 1;
                most.fetch_max(now, SeqCst);
                let _ = gate.lock().unwrap().recv();
                running.fetch_sub(1, SeqCst);
            })
            .await
        }));
    }
    // Wait until two run and the rest wait for a permit.
    while running.load(SeqCst) < 2 || pool.waiting.load(SeqCst) < 2 * QUEUE_PER_PERMIT {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert_eq!(pool.run(|| ()).await, Err(Denied::Busy));
    for _ in 0..tasks.len() {
        release.send(()).unwrap();
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), Ok(()));
    }
    assert_eq!(most.load(SeqCst), 2);
}

#[tokio::test]
async fn guard_checks_real_passwords_and_locks_out_without_hashing() {
    let guard = Guard::new(GuardConfig::default(), 1);
    let hash = guard.hash_password("hunter2".into()).await.unwrap();
    assert_eq!(
        guard
            .verify_password(A, "r", "hunter2".into(), hash.clone())
            .await,
        Ok(true)
    );
    for _ in 0..ADDR_FAILURES {
        assert_eq!(
            guard
                .verify_password(A, "r", "nope".into(), hash.clone())
                .await,
            Ok(false)
        );
    }
    // Locked out: refused at once, even with the right password.
    let started = Instant::now();
    let denied = guard
        .verify_password(A, "r", "hunter2".into(), hash.clone())
        .await
        .unwrap_err();
    assert!(matches!(denied, Denied::Address { .. }));
    assert_eq!(denied.code(), ErrorCode::RateLimited);
    assert!(denied.to_string().contains("retry in 2 s"), "{denied}");
    assert!(started.elapsed() < std::time::Duration::from_millis(50));
    // Tokens: a forged one is refused (and counted); a valid one is no guess and gets
    // in; an expired one is refused without counting.
    assert!(matches!(
        guard.check_token(A, TokenVerdict::Forged),
        Err(Denied::Address { .. })
    ));
    assert_eq!(guard.check_token(A, TokenVerdict::Valid), Ok(true));
    assert_eq!(guard.check_token(B, TokenVerdict::Expired), Ok(false));
    assert!(matches!(
        guard.check_token(A, TokenVerdict::Expired),
        Err(Denied::Address { .. })
    ));
    // Others go on.
    assert_eq!(
        guard.verify_password(B, "r", "hunter2".into(), hash).await,
        Ok(true)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_beyond_the_allowance_waits_for_one_under_way() {
    let guard = Guard::new(
        GuardConfig {
            addr_failures: 1,
            ..GuardConfig::default()
        },
        2,
    );
    let hash = hash_password("pw").unwrap();
    let (first, second) = tokio::join!(
        guard.verify_password(A, "r", "pw".into(), hash.clone()),
        guard.verify_password(A, "r", "pw".into(), hash.clone()),
    );
    // One ran while the other waited for it, instead of being refused.
    assert_eq!((first, second), (Ok(true), Ok(true)));
    // A failure locks the address out, and a waiting check learns so.
    let (wrong, waiting) = tokio::join!(
        guard.verify_password(A, "r", "nope".into(), hash.clone()),
        guard.verify_password(A, "r", "pw".into(), hash),
    );
    let mut outcomes = [wrong, waiting];
    outcomes.sort_by_key(Result::is_ok);
    assert!(
        matches!(outcomes[0], Err(Denied::Address { .. })),
        "{outcomes:?}"
    );
    assert_eq!(outcomes[1], Ok(false));
}
