//! A small SMTP server for the tests: enough of RFC 5321 for lettre (greeting, EHLO or
//! HELO without STARTTLS, MAIL, RCPT, DATA with dot-unstuffing, RSET, NOOP, QUIT). It
//! records every accepted message and can play an outage: refusing connections with
//! 421, or answering 451 to the end of DATA.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// How the server treats the next connection or message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Accept,
    /// Greets with `421 service not available` and hangs up.
    Refuse421,
    /// Takes the message, then answers `451` to the final dot: not accepted.
    Defer451,
}

/// One accepted message.
#[derive(Debug, Clone)]
pub struct Received {
    pub mail_from: String,
    pub recipients: Vec<String>,
    /// The message as sent after DATA, lines joined with CRLF.
    pub data: String,
}

#[derive(Debug)]
struct State {
    mode: Mode,
    received: Vec<Received>,
    /// Connections refused and messages deferred.
    turned_away: usize,
}

/// A running server; stops when dropped.
pub struct SmtpServer {
    pub port: u16,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SmtpServer {
    /// Listens on a free port.
    pub async fn start(mode: Mode) -> SmtpServer {
        SmtpServer::start_on(0, mode).await
    }

    /// Listens on `port` (0: any free one).
    pub async fn start_on(port: u16, mode: Mode) -> SmtpServer {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind the test SMTP server");
        let port = listener.local_addr().expect("address").port();
        let state = Arc::new(Mutex::new(State {
            mode,
            received: Vec::new(),
            turned_away: 0,
        }));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = shared.clone();
                tokio::spawn(async move {
                    // A client that hangs up mid-session is not the server's problem.
                    let _ = session(stream, state).await;
                });
            }
        });
        SmtpServer { port, state, task }
    }

    pub fn set_mode(&self, mode: Mode) {
        self.lock().mode = mode;
    }

    /// Every accepted message so far.
    pub fn received(&self) -> Vec<Received> {
        self.lock().received.clone()
    }

    /// How many connections were refused and messages deferred so far.
    pub fn turned_away(&self) -> usize {
        self.lock().turned_away
    }

    /// Waits until at least `count` messages were accepted; panics after `timeout`.
    pub async fn wait_for(&self, count: usize, timeout: Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let received = self.received();
            if received.len() >= count {
                return received;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "expected {count} messages at the SMTP server, got {}",
                received.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

async fn session(stream: TcpStream, state: Arc<Mutex<State>>) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    let mode = || state.lock().unwrap_or_else(|e| e.into_inner()).mode;
    if mode() == Mode::Refuse421 {
        state.lock().unwrap_or_else(|e| e.into_inner()).turned_away += 1;
        write
            .write_all(b"421 4.3.2 test server not available\r\n")
            .await?;
        return Ok(());
    }
    write.write_all(b"220 smtp.test ESMTP ready\r\n").await?;
    let mut mail_from = String::new();
    let mut recipients = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end_matches(['\r', '\n']);
        let verb = command
            .split([' ', ':'])
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            // No STARTTLS, no AUTH: a plain relay on localhost.
            "EHLO" => b"250-smtp.test\r\n250 8BITMIME\r\n",
            "HELO" => b"250 smtp.test\r\n",
            "MAIL" => {
                mail_from = angle_address(command);
                recipients.clear();
                b"250 2.1.0 ok\r\n"
            }
            "RCPT" => {
                recipients.push(angle_address(command));
                b"250 2.1.5 ok\r\n"
            }
            "DATA" => {
                write.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
                let mut data = Vec::new();
                loop {
                    line.clear();
                    if lines.read_line(&mut line).await? == 0 {
                        return Ok(());
                    }
                    let text = line.trim_end_matches(['\r', '\n']);
                    if text == "." {
                        break;
                    }
                    // Dot-unstuffing (RFC 5321 4.5.2).
                    data.push(text.strip_prefix('.').unwrap_or(text).to_owned());
                }
                let mut shared = state.lock().unwrap_or_else(|e| e.into_inner());
                if shared.mode == Mode::Defer451 {
                    shared.turned_away += 1;
                    b"451 4.3.0 test server deferring; try again later\r\n"
                } else {
                    shared.received.push(Received {
                        mail_from: std::mem::take(&mut mail_from),
                        recipients: std::mem::take(&mut recipients),
                        data: data.join("\r\n"),
                    });
                    b"250 2.0.0 queued\r\n"
                }
            }
            "RSET" => {
                mail_from.clear();
                recipients.clear();
                b"250 2.0.0 ok\r\n"
            }
            "NOOP" => b"250 2.0.0 ok\r\n",
            "QUIT" => {
                write.write_all(b"221 2.0.0 bye\r\n").await?;
                return Ok(());
            }
            _ => b"502 5.5.2 command not recognized\r\n",
        };
        write.write_all(reply).await?;
    }
}

/// The address between `<` and `>` of a MAIL or RCPT command.
fn angle_address(command: &str) -> String {
    command
        .split_once('<')
        .and_then(|(_, rest)| rest.split_once('>'))
        .map(|(address, _)| address.to_owned())
        .unwrap_or_default()
}
