//! A TCP forwarder in front of PostgreSQL: the portal connects through it, and a test can
//! cut it (every connection closed, nothing accepted: the database is "down") and restore it.

use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

pub struct Forwarder {
    pub port: u16,
    target: String,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Forwarder {
    /// A forwarder on a free port that is not accepting yet.
    pub fn new(target_port: u16) -> Forwarder {
        Forwarder {
            port: portal_testkit::process::free_port(),
            target: format!("127.0.0.1:{target_port}"),
            tasks: Arc::default(),
        }
    }

    /// Starts accepting and forwarding.
    pub async fn up(&self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).await.expect("the forwarder's port");
        let target = self.target.clone();
        let tasks = Arc::clone(&self.tasks);
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let target = target.clone();
                let pipe = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                tasks.lock().unwrap_or_else(|p| p.into_inner()).push(pipe);
            }
        });
        self.tasks.lock().unwrap_or_else(|p| p.into_inner()).push(accept);
    }

    /// Closes every connection and stops accepting: to the portal, the database is gone.
    pub fn down(&self) {
        for task in self.tasks.lock().unwrap_or_else(|p| p.into_inner()).drain(..) {
            task.abort();
        }
    }

    /// A URL for database `name` through the forwarder.
    pub fn url(&self, direct: &str) -> String {
        // postgres://user@127.0.0.1:PORT/db → the same through this port.
        let (scheme_user, rest) = direct.split_once('@').expect("a URL with a user");
        let (_, path) = rest.split_once('/').expect("a URL with a database");
        format!("{scheme_user}@127.0.0.1:{}/{path}", self.port)
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.down();
    }
}

/// The port of a `postgres://user@host:port/db` URL.
pub fn port_of(url: &str) -> u16 {
    let (_, rest) = url.split_once('@').expect("a URL with a user");
    let host_port = rest.split('/').next().unwrap_or("");
    host_port.rsplit_once(':').and_then(|(_, p)| p.parse().ok()).unwrap_or(5432)
}
