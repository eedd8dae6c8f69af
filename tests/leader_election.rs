//! Leader election against a fake API server holding one Lease, with the guarantees a real
//! one gives: creates fail when the object exists, replaces fail on a stale resourceVersion.
//! Time is paused (Tokio test-util), so the default 15 s lease costs no wall-clock time.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use curve_operator::runtime::leader::{LeaderElector, LeadershipLost, LeaseDurations};
use http::{Method, Request, Response, StatusCode};
use k8s_openapi::api::coordination::v1::Lease;
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};
use tokio::time::Instant;

const LEASE_NAME: &str = "curve-operator-leader";

#[derive(Default)]
struct Store {
    lease: Option<Lease>,
    version: u64,
    conflicts: usize,
}

impl Store {
    fn handle(&mut self, method: &Method, path: &str, body: &[u8]) -> (StatusCode, Value) {
        let collection = "/apis/coordination.k8s.io/v1/namespaces/curve-system/leases";
        let item = format!("{collection}/{LEASE_NAME}");
        let current = self
            .lease
            .as_ref()
            .and_then(|l| l.metadata.resource_version.clone());
        match (method.clone(), path) {
            (Method::GET, p) if p == item => match &self.lease {
                Some(lease) => (StatusCode::OK, serde_json::to_value(lease).unwrap()),
                None => status(StatusCode::NOT_FOUND, "NotFound"),
            },
            (Method::POST, p) if p == collection => {
                if self.lease.is_some() {
                    self.conflicts += 1;
                    return status(StatusCode::CONFLICT, "AlreadyExists");
                }
                self.store(body, StatusCode::CREATED)
            }
            (Method::PUT, p) if p == item => {
                let sent: Lease = serde_json::from_slice(body).unwrap();
                if self.lease.is_none() || sent.metadata.resource_version != current {
                    self.conflicts += 1;
                    return status(StatusCode::CONFLICT, "Conflict");
                }
                self.store(body, StatusCode::OK)
            }
            (m, p) => panic!("unexpected request {m} {p}"),
        }
    }

    fn store(&mut self, body: &[u8], code: StatusCode) -> (StatusCode, Value) {
        let mut lease: Lease = serde_json::from_slice(body).unwrap();
        self.version += 1;
        lease.metadata.resource_version = Some(self.version.to_string());
        self.lease = Some(lease.clone());
        (code, serde_json::to_value(lease).unwrap())
    }

    fn holder(&self) -> Option<String> {
        self.lease.as_ref()?.spec.as_ref()?.holder_identity.clone()
    }

    fn transitions(&self) -> Option<i32> {
        self.lease.as_ref()?.spec.as_ref()?.lease_transitions
    }
}

fn status(code: StatusCode, reason: &str) -> (StatusCode, Value) {
    let body = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                      "message": reason, "reason": reason, "code": code.as_u16()});
    (code, body)
}

/// One contender: its own client to the shared store, with a switch that cuts it off.
struct Contender {
    elector: LeaderElector,
    partitioned: Arc<AtomicBool>,
}

fn contender(store: &Arc<Mutex<Store>>, identity: &str) -> Contender {
    let partitioned = Arc::new(AtomicBool::new(false));
    let (store, cut) = (store.clone(), partitioned.clone());
    let service = tower::service_fn(move |req: Request<Body>| {
        let (store, cut) = (store.clone(), cut.clone());
        async move {
            if cut.load(Ordering::SeqCst) {
                return Err(std::io::Error::other("network partition"));
            }
            let (parts, body) = req.into_parts();
            let body = body.collect_bytes().await.unwrap();
            let (code, json) = store
                .lock()
                .unwrap()
                .handle(&parts.method, parts.uri.path(), &body);
            let response = Response::builder()
                .status(code)
                .header("content-type", "application/json")
                .body(Body::from(serde_json::to_vec(&json).unwrap()))
                .unwrap();
            Ok(response)
        }
    });
    let client = Client::new(service, "curve-system");
    let elector = LeaderElector::new(client, "curve-system", LEASE_NAME, identity, DURATIONS);
    Contender {
        elector,
        partitioned,
    }
}

const DURATIONS: LeaseDurations = LeaseDurations {
    lease: Duration::from_secs(15),
    renew_deadline: Duration::from_secs(10),
    retry: Duration::from_secs(2),
};

/// Runs `leader` renewing for `period` while `others` campaign; none of them may win.
async fn hold_against(leader: &LeaderElector, others: &[&LeaderElector], period: Duration) {
    let campaigns = futures::future::select_all(others.iter().map(|o| Box::pin(o.acquire())));
    tokio::select! {
        lost = leader.keep_leading() => panic!("leader lost while renewing: {lost}"),
        (_, i, _) = campaigns => panic!("{} acquired while {} leads", others[i].identity(), leader.identity()),
        _ = tokio::time::sleep(period) => {}
    }
}

/// Two contenders on one lease: `a` leads and has held it against `b` for a lease duration.
async fn a_leading_b_standing_by() -> (Arc<Mutex<Store>>, Contender, Contender) {
    let store = Arc::new(Mutex::new(Store::default()));
    let (a, b) = (contender(&store, "a"), contender(&store, "b"));
    a.elector.acquire().await;
    hold_against(&a.elector, &[&b.elector], DURATIONS.lease).await;
    (store, a, b)
}

#[tokio::test(start_paused = true)]
async fn only_one_leads_and_the_standby_takes_over_when_the_holder_stops_renewing() {
    let store = Arc::new(Mutex::new(Store::default()));
    let (a, b) = (contender(&store, "a"), contender(&store, "b"));

    a.elector.acquire().await;
    assert_eq!(store.lock().unwrap().holder().as_deref(), Some("a"));
    hold_against(&a.elector, &[&b.elector], DURATIONS.lease * 4).await;

    // `a` stops renewing (hung or killed without releasing): `b` waits out the lease.
    let stopped = Instant::now();
    b.elector.acquire().await;
    let waited = stopped.elapsed();
    assert!(
        waited >= DURATIONS.lease - DURATIONS.retry && waited <= DURATIONS.lease + DURATIONS.retry,
        "took over after {waited:?}"
    );
    assert_eq!(store.lock().unwrap().holder().as_deref(), Some("b"));
    assert_eq!(store.lock().unwrap().transitions(), Some(1));

    // The old holder, renewing again, knows it is past its deadline and does not take it back.
    assert_eq!(
        a.elector.keep_leading().await,
        LeadershipLost::RenewDeadline(DURATIONS.renew_deadline)
    );
    hold_against(&b.elector, &[&a.elector], DURATIONS.lease * 2).await;
}

/// Lets every contender campaign for `period`; returns those that became leader.
async fn race<'a>(contenders: &[&'a Contender], period: Duration) -> Vec<&'a Contender> {
    let deadline = Instant::now() + period;
    let won = futures::future::join_all(
        contenders
            .iter()
            .map(|c| tokio::time::timeout_at(deadline, c.elector.acquire())),
    )
    .await;
    contenders
        .iter()
        .zip(won)
        .filter(|(_, r)| r.is_ok())
        .map(|(c, _)| *c)
        .collect()
}

#[tokio::test(start_paused = true)]
async fn of_contenders_racing_for_a_free_or_expired_lease_exactly_one_wins() {
    let store = Arc::new(Mutex::new(Store::default()));
    let all = [
        contender(&store, "a"),
        contender(&store, "b"),
        contender(&store, "c"),
    ];
    let all: Vec<&Contender> = all.iter().collect();

    // All three find no Lease and create it at once: one create succeeds, the others conflict.
    let won = race(&all, DURATIONS.retry / 2).await;
    assert_eq!(won.len(), 1, "{} leaders", won.len());
    let first = won[0];
    assert_eq!(
        store.lock().unwrap().holder().as_deref(),
        Some(first.elector.identity())
    );
    assert_eq!(store.lock().unwrap().conflicts, 2);
    let rest: Vec<&Contender> = all
        .iter()
        .copied()
        .filter(|c| !std::ptr::eq(*c, first))
        .collect();
    hold_against(
        &first.elector,
        &[&rest[0].elector, &rest[1].elector],
        DURATIONS.lease * 2,
    )
    .await;

    // The leader stops; both standbys see the lease expire at the same moment and replace it
    // with the same resourceVersion: one wins, the other conflicts and then keeps off.
    let won = race(&rest, DURATIONS.lease + DURATIONS.retry * 2).await;
    assert_eq!(won.len(), 1, "{} leaders", won.len());
    assert_eq!(store.lock().unwrap().conflicts, 3);
    let second = won[0];
    assert_eq!(
        store.lock().unwrap().holder().as_deref(),
        Some(second.elector.identity())
    );
    let others: Vec<&LeaderElector> = all
        .iter()
        .filter(|c| !std::ptr::eq(**c, second))
        .map(|c| &c.elector)
        .collect();
    hold_against(&second.elector, &others, DURATIONS.lease * 2).await;
}

#[tokio::test(start_paused = true)]
async fn a_cut_off_leader_steps_down_before_the_standby_takes_over() {
    let (_, a, b) = a_leading_b_standing_by().await;

    a.partitioned.store(true, Ordering::SeqCst);
    let ((lost, a_stopped), b_started) = tokio::join!(
        async { (a.elector.keep_leading().await, Instant::now()) },
        async {
            b.elector.acquire().await;
            Instant::now()
        },
    );
    assert_eq!(
        lost,
        LeadershipLost::RenewDeadline(DURATIONS.renew_deadline)
    );
    assert!(
        a_stopped < b_started,
        "a stopped at {a_stopped:?}, b started at {b_started:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_released_lease_is_taken_at_once() {
    let (store, a, b) = a_leading_b_standing_by().await;

    a.elector.release().await.unwrap();
    assert_eq!(store.lock().unwrap().holder(), None);
    let released = Instant::now();
    b.elector.acquire().await;
    assert!(
        released.elapsed() <= DURATIONS.retry,
        "took {:?}",
        released.elapsed()
    );
    // Releasing a lease held by someone else changes nothing.
    a.elector.release().await.unwrap();
    assert_eq!(store.lock().unwrap().holder().as_deref(), Some("b"));
}
