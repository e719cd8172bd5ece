//! An SMTP sink for the tests: a real SMTP server (mailin's protocol state machine, run here
//! on tokio) on a loopback port, keeping every message it accepts, read back with
//! mail-parser. It can be stopped and started again on the same port, and told to answer
//! 451 (try later) or 550 (refused) instead of taking mail.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use mail_parser::MessageParser;
use mailin::{Action, Handler, Response, SessionBuilder};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::{PATIENCE, POLL};

/// What the sink answers a message with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Accept,
    /// 451 at `MAIL FROM`: a mail server that is busy.
    Defer,
    /// 550 at `RCPT TO`: a mailbox that does not exist.
    Refuse,
}

/// A message the sink took: the envelope, and the message as sent.
#[derive(Debug, Clone)]
pub struct Received {
    pub from: String,
    pub to: Vec<String>,
    pub raw: Vec<u8>,
}

impl Received {
    fn parsed(&self) -> mail_parser::Message<'_> {
        MessageParser::default().parse(&self.raw).expect("a message mail-parser reads")
    }

    pub fn subject(&self) -> String {
        self.parsed().subject().unwrap_or_default().to_owned()
    }

    /// The plain-text part, decoded.
    pub fn text(&self) -> String {
        self.parsed().body_text(0).map(|t| t.into_owned()).unwrap_or_default()
    }

    /// The HTML part, decoded.
    pub fn html(&self) -> String {
        self.parsed().body_html(0).map(|t| t.into_owned()).unwrap_or_default()
    }

    /// The `To` header's addresses.
    pub fn to_header(&self) -> Vec<String> {
        let message = self.parsed();
        message
            .to()
            .map(|to| to.iter().filter_map(|a| a.address().map(str::to_owned)).collect())
            .unwrap_or_default()
    }

    /// Every header's name, as sent.
    pub fn header_names(&self) -> Vec<String> {
        self.parsed().headers().iter().map(|h| h.name().to_owned()).collect()
    }

    pub fn message_id(&self) -> String {
        self.parsed().message_id().unwrap_or_default().to_owned()
    }

    /// The first link in the text part that starts with `prefix` (`http://…/reset/`).
    pub fn link(&self, prefix: &str) -> Option<String> {
        let text = self.text();
        let at = text.find(prefix)?;
        Some(text[at..].split_whitespace().next().unwrap_or_default().to_owned())
    }
}

struct Shared {
    received: Mutex<Vec<Received>>,
    mode: Mutex<Mode>,
    /// Connections seen, whatever came of them.
    connections: Mutex<u64>,
    /// The conversations going on (a stop ends them: the client's pooled connection too).
    open: Mutex<Vec<JoinHandle<()>>>,
}

/// The sink on its port, running or stopped.
pub struct Sink {
    port: u16,
    shared: Arc<Shared>,
    server: Mutex<Option<JoinHandle<()>>>,
}

impl Sink {
    /// A sink taking mail on a free loopback port.
    pub async fn start() -> Sink {
        let sink = Sink::stopped().await;
        sink.resume().await;
        sink
    }

    /// A sink with a port but not listening yet (a mail server that is down).
    pub async fn stopped() -> Sink {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let port = listener.local_addr().expect("its address").port();
        drop(listener);
        Sink {
            port,
            shared: Arc::new(Shared {
                received: Mutex::new(Vec::new()),
                mode: Mutex::new(Mode::Accept),
                connections: Mutex::new(0),
                open: Mutex::new(Vec::new()),
            }),
            server: Mutex::new(None),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `smtp://127.0.0.1:<port>`: plain SMTP, as `email.smtp_url` takes it.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Listens again on its port (after [`Sink::stop`]).
    pub async fn resume(&self) {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let mut listener = None;
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while listener.is_none() {
            match TcpListener::bind(addr).await {
                Ok(bound) => listener = Some(bound),
                Err(e) if tokio::time::Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(POLL).await;
                }
                Err(e) => panic!("the sink's port {} did not free up: {e}", self.port),
            }
        }
        let listener = listener.expect("bound");
        let shared = Arc::clone(&self.shared);
        let server = tokio::spawn(async move {
            loop {
                let Ok((stream, peer)) = listener.accept().await else { continue };
                *shared.connections.lock().unwrap() += 1;
                let conversation = tokio::spawn(serve(stream, peer.ip(), Arc::clone(&shared)));
                let mut open = shared.open.lock().unwrap();
                open.retain(|c| !c.is_finished());
                open.push(conversation);
            }
        });
        *self.server.lock().unwrap() = Some(server);
    }

    /// Stops listening and drops every open connection (a mail server going down).
    pub async fn stop(&self) {
        let server = self.server.lock().unwrap().take();
        if let Some(server) = server {
            server.abort();
            let _ = server.await;
        }
        let open: Vec<JoinHandle<()>> = std::mem::take(&mut *self.shared.open.lock().unwrap());
        for conversation in open {
            conversation.abort();
            let _ = conversation.await;
        }
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.shared.mode.lock().unwrap() = mode;
    }

    /// Every message taken so far.
    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }

    /// Connections made to the sink so far.
    pub fn connections(&self) -> u64 {
        *self.shared.connections.lock().unwrap()
    }

    /// Waits until at least `n` messages arrived; fails the test after [`PATIENCE`].
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let received = self.received();
            if received.len() >= n {
                return received;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the sink got {} message(s), not {n}, in {PATIENCE:?}",
                received.len()
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until `n` connections were made to the sink; fails after [`PATIENCE`].
    pub async fn wait_for_connections(&self, n: u64) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while self.connections() < n {
            assert!(tokio::time::Instant::now() < deadline, "no SMTP connection came in {PATIENCE:?}");
            tokio::time::sleep(POLL).await;
        }
    }
}

/// One SMTP conversation.
struct Conversation {
    shared: Arc<Shared>,
    from: String,
    to: Vec<String>,
    data: Vec<u8>,
}

impl Handler for Conversation {
    fn mail(&mut self, _ip: IpAddr, _domain: &str, from: &str) -> Response {
        if *self.shared.mode.lock().unwrap() == Mode::Defer {
            return Response::custom(451, "4.3.0 busy, try again later".into());
        }
        self.from = from.to_owned();
        self.to.clear();
        mailin::response::OK
    }

    fn rcpt(&mut self, to: &str) -> Response {
        if *self.shared.mode.lock().unwrap() == Mode::Refuse {
            return Response::custom(550, "5.1.1 no such mailbox".into());
        }
        self.to.push(to.to_owned());
        mailin::response::OK
    }

    fn data_start(&mut self, _domain: &str, _from: &str, _is8bit: bool, _to: &[String]) -> Response {
        self.data.clear();
        mailin::response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let received =
            Received { from: self.from.clone(), to: self.to.clone(), raw: std::mem::take(&mut self.data) };
        self.shared.received.lock().unwrap().push(received);
        mailin::response::OK
    }
}

async fn serve(stream: TcpStream, peer: IpAddr, shared: Arc<Shared>) {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    let conversation = Conversation { shared, from: String::new(), to: Vec::new(), data: Vec::new() };
    let mut session = SessionBuilder::new("sink.test").build(peer, conversation);
    if write.write_all(&session.greeting().buffer().expect("a greeting")).await.is_err() {
        return;
    }
    let mut line = Vec::new();
    loop {
        line.clear();
        match read.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let response = session.process(&line);
        match response.action {
            Action::NoReply => continue,
            Action::Reply => {
                if write.write_all(&response.buffer().expect("a reply")).await.is_err() {
                    return;
                }
            }
            Action::Close | Action::UpgradeTls => {
                let _ = write.write_all(&response.buffer().expect("a reply")).await;
                return;
            }
        }
    }
}
