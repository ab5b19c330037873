//! The read-only document client against the real `portal-server`: a writer (the yrs
//! y-websocket client of the server's own document tests) edits and sets its awareness,
//! and the kiosk's client follows without ever writing; a wrong token is one refusal, not
//! a storm; a dropped connection and a server restart are caught up with.

mod common;
#[path = "../../../signaling/server/tests/docs_client/mod.rs"]
mod docs_client;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{LONG, init_tracing};
use docs_client::{DocClient as Writer, Signaling, metric, wait_metric};
use futures_util::StreamExt;
use portal_net::docs::{
    CODE_TEXT, DocClient, DocConfig, DocError, DocView, LANGUAGE_KEY, META_MAP,
};
use portal_testkit::ServerProc;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use yrs::sync::{Message as YMessage, SyncMessage};
use yrs::{Assoc, IndexedSequence, Map, Transact};

const PASSWORD: &str = "door-code-4";

/// Joins `room` (created protected by [`PASSWORD`]) over `/ws` and keeps the signaling
/// connection reading in the background, so the room stays; the `docToken`.
async fn join_room(addr: SocketAddr, room: &str) -> String {
    let mut member = Signaling::hello(addr, "Member").await;
    let joined = member.join(room, Some(PASSWORD)).await;
    let token = Signaling::doc_token(&joined);
    tokio::spawn(async move { while let Some(Ok(_)) = member.ws.next().await {} });
    token
}

/// A writer on the document with `token`, synced.
async fn writer(addr: SocketAddr, room: &str, token: &str) -> Writer {
    let mut w = Writer::connect_raw(addr, room, &format!("token={token}"))
        .await
        .unwrap_or_else(|e| panic!("writer refused: {e:?}"));
    w.sync().await;
    w
}

/// Sets the language as the browser's picker does and sends the update.
async fn set_language(w: &mut Writer, lang: &str) {
    let meta = w.doc.get_or_insert_map(META_MAP);
    let update = {
        let mut txn = w.doc.transact_mut();
        meta.insert(&mut txn, LANGUAGE_KEY, lang);
        txn.encode_update_v1()
    };
    w.send(YMessage::Sync(SyncMessage::Update(update))).await;
}

/// A y-monaco relative position for UTF-16 offset `index` of the code, as JSON.
fn rel_pos(w: &Writer, index: u32) -> String {
    let text = w.doc.get_or_insert_text(CODE_TEXT);
    let txn = w.doc.transact();
    let pos = text
        .sticky_index(&txn, index, Assoc::After)
        .expect("an index in the text");
    match pos.id() {
        Some(id) => format!(
            r#"{{"type":null,"tname":"code","item":{{"client":{},"clock":{}}},"assoc":0}}"#,
            id.client.get(),
            id.clock
        ),
        None => r#"{"type":null,"tname":"code","item":null,"assoc":0}"#.to_owned(),
    }
}

/// The next view that `pick` accepts.
async fn wait_view(
    view: &mut watch::Receiver<DocView>,
    what: &str,
    pick: impl Fn(&DocView) -> bool,
) -> DocView {
    tokio::time::timeout(LONG, async {
        loop {
            {
                let now = view.borrow_and_update();
                if pick(&now) {
                    return now.clone();
                }
            }
            view.changed().await.expect("the client runs");
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {what}: {:?}", *view.borrow()))
}

/// A TCP relay to `target` that counts the connections it takes and can cut them all.
struct Relay {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    cut: watch::Sender<u64>,
}

impl Relay {
    async fn start(target: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let accepted = Arc::new(AtomicUsize::new(0));
        let (cut, cuts) = watch::channel(0u64);
        let count = Arc::clone(&accepted);
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let mut cuts = cuts.clone();
                cuts.borrow_and_update();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cuts.changed() => {}
                    }
                });
            }
        });
        Relay {
            addr,
            accepted,
            cut,
        }
    }

    fn ws_base(&self) -> String {
        format!("ws://{}", self.addr)
    }

    fn cut(&self) {
        self.cut.send_modify(|n| *n += 1);
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

#[tokio::test]
async fn edits_and_awareness_reach_the_read_only_view_and_nothing_goes_back() {
    init_tracing();
    let mut server = ServerProc::builder().start_async().await;
    let addr = server.addr;
    let room = "read-along";
    let token = join_room(addr, room).await;
    let mut w = writer(addr, room, &token).await;
    let code = "fn main() {\n    println!(\"hé 😀\");\n}\n";
    w.type_text(code).await;
    set_language(&mut w, "rust").await;
    // Both applied before the client comes: they arrive in its sync, not as live edits.
    wait_metric(addr, "portal_doc_updates_total ", 2).await;

    let client =
        DocClient::start(DocConfig::new(server.ws_base(), room, Some(token))).expect("started");
    let mut view = client.view();
    let synced = wait_view(&mut view, "the text and language", |v| {
        v.connected && &*v.text == code && v.language.as_deref() == Some("rust")
    })
    .await;
    assert_eq!(synced.language_id(), "rust");
    assert_eq!(synced.error, None);
    assert_eq!(
        synced.last_edit_by, None,
        "what was there before is no live edit"
    );

    // Live edits: text and language.
    w.type_text("// more\n").await;
    set_language(&mut w, "python").await;
    let writer_id = w.doc.client_id().get();
    let edited = wait_view(&mut view, "the live edit", |v| {
        v.text.ends_with("// more\n") && v.language.as_deref() == Some("python")
    })
    .await;
    assert_eq!(edited.last_edit_by, Some(writer_id));
    assert_eq!(edited.last_edit_line, Some(4));

    // Awareness as the browser writes it: the caret after "println" on line 2.
    let caret = u32::try_from("fn main() {\n    println".encode_utf16().count()).unwrap();
    let anchor = rel_pos(&w, caret - 7);
    let head = rel_pos(&w, caret);
    let state = format!(
        r##"{{"user":{{"name":"Ada","color":"#0090ff","colorLight":"#0090ff33"}},"presenter":true,"presenterSince":1700000000000,"selection":{{"anchor":{anchor},"head":{head}}}}}"##
    );
    w.set_awareness(1, &state).await;
    let seen = wait_view(&mut view, "the presenter", |v| !v.peers.is_empty()).await;
    let ada = seen.peer(writer_id).expect("the writer's state");
    assert_eq!(ada.name, "Ada");
    assert_eq!(ada.color, "#0090ff");
    assert!(ada.presenter);
    assert_eq!(ada.presenter_since, Some(1_700_000_000_000.0));
    assert_eq!(ada.cursor_line, Some(2));
    // The caret moves to the end of the text (y-monaco writes item null there).
    let end = r#"{"type":null,"tname":"code","item":null,"assoc":0}"#;
    let state = format!(
        r#"{{"user":{{"name":"Ada"}},"presenter":false,"selection":{{"anchor":{end},"head":{end}}}}}"#
    );
    w.set_awareness(2, &state).await;
    let moved = wait_view(&mut view, "the caret at the end", |v| {
        v.peer(writer_id).is_some_and(|p| !p.presenter)
    })
    .await;
    assert_eq!(moved.peer(writer_id).unwrap().cursor_line, Some(5));

    // Read-only: nothing came from the client. The server dropped no update of its, the
    // server's document holds the writer's content alone, and the writer's state vector
    // names only the writer.
    assert_eq!(
        metric(addr, "portal_doc_rejected_total{reason=\"read_only\"} ").await,
        0
    );
    w.pump_for(200).await;
    let ours = w.state_vector();
    assert_eq!(ours.len(), 1, "only the writer wrote: {ours:?}");
    let check = writer(addr, room, &join_room(addr, room).await).await;
    assert_eq!(check.state_vector(), ours);
    assert_eq!(check.text(), w.text());

    client.shutdown().await;
    server.terminate_async().await;
}

#[tokio::test]
async fn a_wrong_token_is_one_typed_refusal_until_a_fresh_token() {
    init_tracing();
    let mut server = ServerProc::builder().start_async().await;
    let room = "guarded";
    let token = join_room(server.addr, room).await;
    let relay = Relay::start(server.addr).await;
    let client = DocClient::start(DocConfig::new(
        relay.ws_base(),
        room,
        Some("v1.1.4102444800000.AAAA".into()),
    ))
    .expect("started");
    let mut view = client.view();
    let refused = wait_view(&mut view, "the refusal", |v| v.error.is_some()).await;
    assert_eq!(refused.error, Some(DocError::Refused));
    assert!(refused.error.as_ref().unwrap().is_final());
    assert!(!refused.connected);
    // No storm: it waits for a token instead of asking again.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(relay.accepted(), 1);
    assert_eq!(view.borrow().attempts, 1);

    client.set_token(token);
    let ok = wait_view(&mut view, "connected with the fresh token", |v| v.connected).await;
    assert_eq!((ok.error, ok.attempts), (None, 0));
    assert_eq!(relay.accepted(), 2);

    // A room that does not exist is final too.
    let nowhere =
        DocClient::start(DocConfig::new(server.ws_base(), "nowhere", None)).expect("started");
    let mut gone = nowhere.view();
    let missing = wait_view(&mut gone, "no such room", |v| v.error.is_some()).await;
    assert_eq!(missing.error, Some(DocError::NoRoom));

    nowhere.shutdown().await;
    client.shutdown().await;
    server.terminate_async().await;
}

#[tokio::test]
async fn a_dropped_connection_reconnects_and_catches_up() {
    init_tracing();
    let mut server = ServerProc::builder().start_async().await;
    let room = "flaky";
    let token = join_room(server.addr, room).await;
    let mut w = writer(server.addr, room, &token).await;
    w.type_text("one\n").await;
    let relay = Relay::start(server.addr).await;
    let client =
        DocClient::start(DocConfig::new(relay.ws_base(), room, Some(token))).expect("started");
    let mut view = client.view();
    wait_view(&mut view, "synced", |v| v.connected && &*v.text == "one\n").await;

    relay.cut();
    let lost = wait_view(&mut view, "the drop", |v| !v.connected).await;
    assert!(
        matches!(lost.error, Some(DocError::Connection(_))),
        "{lost:?}"
    );
    w.type_text("two\n").await;
    set_language(&mut w, "go").await;
    let back = wait_view(&mut view, "caught up", |v| {
        v.connected && &*v.text == "one\ntwo\n" && v.language.as_deref() == Some("go")
    })
    .await;
    assert_eq!((back.error, back.attempts), (None, 0));
    assert_eq!(relay.accepted(), 2);

    client.shutdown().await;
    server.terminate_async().await;
}

#[tokio::test]
async fn after_a_server_restart_it_reconnects_and_catches_up() {
    init_tracing();
    let mut server = ServerProc::builder().start_async().await;
    let room = "sturdy-doc";
    let token = join_room(server.addr, room).await;
    let mut w = writer(server.addr, room, &token).await;
    w.type_text("before\n").await;
    let client = DocClient::start(DocConfig::new(server.ws_base(), room, Some(token.clone())))
        .expect("started");
    let mut view = client.view();
    wait_view(&mut view, "synced", |v| {
        v.connected && &*v.text == "before\n"
    })
    .await;
    drop(w);

    server.restart_async().await;
    wait_view(&mut view, "the drop", |v| !v.connected).await;
    // The protected room outlives the restart, and so do its document and the token.
    let fresh = join_room(server.addr, room).await;
    let mut w = writer(server.addr, room, &fresh).await;
    assert_eq!(w.text(), "before\n");
    w.type_text("after\n").await;
    let back = wait_view(&mut view, "caught up", |v| {
        v.connected && &*v.text == "before\nafter\n"
    })
    .await;
    assert_eq!(back.error, None);

    client.shutdown().await;
    server.terminate_async().await;
}

#[tokio::test]
async fn a_room_made_again_is_followed_from_its_new_document() {
    init_tracing();
    let mut server = ServerProc::builder()
        .args(["--open-room-linger", "0"])
        .start_async()
        .await;
    let addr = server.addr;
    let room = "again";
    let mut member = Signaling::hello(addr, "Member").await;
    let token = Signaling::doc_token(&member.join(room, None).await);
    let mut w = writer(addr, room, &token).await;
    w.type_text("old\n").await;
    let client =
        DocClient::start(DocConfig::new(server.ws_base(), room, Some(token))).expect("started");
    let mut view = client.view();
    wait_view(&mut view, "the old text", |v| {
        v.connected && &*v.text == "old\n"
    })
    .await;

    // Everyone leaves: the open room goes, and its document with it.
    member.leave().await;
    w.close().await;
    let gone = wait_view(&mut view, "the room gone", |v| v.error.is_some()).await;
    assert_eq!(gone.error, Some(DocError::NoRoom));

    // Someone makes the room again; the kiosk rejoins and is given its token.
    let fresh = join_room(addr, room).await;
    let mut w = writer(addr, room, &fresh).await;
    w.type_text("new\n").await;
    client.set_token(fresh);
    let back = wait_view(&mut view, "the new document", |v| {
        v.connected && &*v.text == "new\n"
    })
    .await;
    assert_eq!(back.error, None);
    w.pump_for(200).await;
    assert_eq!(w.text(), "new\n", "nothing of the old document went back");

    client.shutdown().await;
    server.terminate_async().await;
}
