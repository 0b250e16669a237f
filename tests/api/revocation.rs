//! Revocation you can keep current: the exchange fetches a CA's CRL from the
//! distribution point its certificates name, keeps it only when a trusted CA signed it,
//! and the report says which source answered.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use baohan::pki::demo::{serial_hex, RevokedSerial};
use baohan::services::crl_fetch::{refresh_fetched_crls, FetchRound};
use baohan::services::ocsp_fetch::refresh_ocsp_answers;
use chrono::{Duration, Utc};
use openssl::x509::{X509Crl, X509};

use crate::fixtures::{key_pem, pem, register_hosted_key, DemoCa, IssuerSpec, KeyType, TestPki};
use crate::helpers::{demo_uscc, TestApp};
use crate::on_both_backends;

on_both_backends!(
    a_crl_fetched_from_the_distribution_point_revokes_without_an_upload,
    a_crl_served_by_someone_else_is_not_stored,
    the_ocsp_responder_a_certificate_names_is_asked_and_named,
    a_certificate_naming_its_distribution_point_is_registered_without_an_upload,
);

const GUARANTOR: &str = "鲁信融资担保";

/// A CA's web server on a loopback port: answers every request with the bytes it is
/// told to serve, and counts the requests.
struct CrlServer {
    url: String,
    body: Arc<Mutex<Vec<u8>>>,
    requests: Arc<Mutex<usize>>,
    stop: Arc<AtomicBool>,
}

impl CrlServer {
    fn start() -> CrlServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!(
            "http://127.0.0.1:{}/ca.crl",
            listener.local_addr().expect("addr").port()
        );
        let body = Arc::new(Mutex::new(Vec::new()));
        let requests = Arc::new(Mutex::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (served, counted, stopped) = (body.clone(), requests.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut stream) = stream else { continue };
                // One request per connection; its head is all the server reads.
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && head.len() < 8192 {
                    match stream.read(&mut byte) {
                        Ok(1) => head.push(byte[0]),
                        _ => break,
                    }
                }
                *counted.lock().expect("count") += 1;
                let bytes = served.lock().expect("body").clone();
                let _ = stream.write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/pkix-crl\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        bytes.len()
                    )
                    .as_bytes(),
                );
                let _ = stream.write_all(&bytes);
            }
        });
        CrlServer {
            url,
            body,
            requests,
            stop,
        }
    }

    fn serve(&self, crl: &X509Crl) {
        self.serve_bytes(&crl.to_der().expect("der"));
    }

    fn serve_bytes(&self, bytes: &[u8]) {
        *self.body.lock().expect("body") = bytes.to_vec();
    }

    fn requests(&self) -> usize {
        *self.requests.lock().expect("count")
    }
}

impl Drop for CrlServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = std::net::TcpStream::connect(
            self.url
                .trim_start_matches("http://")
                .split('/')
                .next()
                .unwrap_or_default(),
        );
    }
}

/// One round of the upkeep's CRL fetching.
async fn fetch_round(app: &TestApp) -> FetchRound {
    let ctx = app.ctx.clone();
    tokio::task::spawn_blocking(move || refresh_fetched_crls(&ctx))
        .await
        .expect("join")
        .expect("fetch round")
}

/// A CRL of `ca` issued now and due in a week, revoking `revoked`.
fn crl_revoking(ca: &DemoCa, revoked: &[RevokedSerial], number: u64) -> X509Crl {
    ca.crl(revoked, Utc::now(), Utc::now() + Duration::days(7), number)
        .expect("CRL")
}

async fn a_crl_fetched_from_the_distribution_point_revokes_without_an_upload(app: TestApp) {
    let pki = TestPki::set_up(&app).await;
    let server = CrlServer::start();
    let mut spec = IssuerSpec::new(GUARANTOR, &demo_uscc("guarantor"));
    spec.crl_distribution_point = Some(server.url.clone());
    let cert = register_hosted_key(&app, &pki.ca, "guarantor", &spec).await;
    let bond = app
        .bond_on_new_tender("enterprise1", "guarantor", "BZ-CDP-1")
        .await;

    let report = app.verify(&bond, &bond.code).await;
    assert_eq!(report.indication, "PASSED", "{report:?}");
    let revocation = report.check("revocation");
    assert!(
        revocation
            .explanation
            .contains("crl (uploaded by the operator)"),
        "{revocation:?}"
    );

    // The key was compromised before the bond was signed; the CA publishes that at
    // its distribution point only.
    let revoked = RevokedSerial {
        serial_hex: serial_hex(&cert.cert).expect("serial"),
        revoked_at: Utc::now() - Duration::hours(1),
    };
    server.serve(&crl_revoking(&pki.ca, &[revoked], 2));
    let round = fetch_round(&app).await;
    assert_eq!((round.stored, round.failed), (1, 0), "{round:?}");

    let report = app.verify(&bond, &bond.code).await;
    assert_eq!(report.indication, "FAILED", "{report:?}");
    assert_eq!(report.sub_indication.as_deref(), Some("REVOKED"));
    let revocation = report.check("revocation");
    assert!(
        revocation
            .explanation
            .contains(&format!("crl (fetched from {} at ", server.url)),
        "{revocation:?}"
    );

    // Not due again for days: the next rounds leave the CA's server alone.
    let asked = server.requests();
    assert_eq!(fetch_round(&app).await.stored, 0);
    assert_eq!(server.requests(), asked);
}

async fn a_crl_served_by_someone_else_is_not_stored(app: TestApp) {
    let pki = TestPki::set_up(&app).await;
    let server = CrlServer::start();
    let mut spec = IssuerSpec::new(GUARANTOR, &demo_uscc("guarantor"));
    spec.crl_distribution_point = Some(server.url.clone());
    let cert = register_hosted_key(&app, &pki.ca, "guarantor", &spec).await;
    let bond = app
        .bond_on_new_tender("enterprise1", "guarantor", "BZ-CDP-2")
        .await;

    // Someone who controls the URL serves a CRL under the CA's very name, signed with a
    // key of their own, revoking the guarantor's certificate.
    let impostor = DemoCa::new("Baohan Test CA", KeyType::EcP256).expect("CA");
    let revoked = RevokedSerial {
        serial_hex: serial_hex(&cert.cert).expect("serial"),
        revoked_at: Utc::now() - Duration::hours(1),
    };
    server.serve(&crl_revoking(&impostor, &[revoked], 99));
    let round = fetch_round(&app).await;
    assert_eq!((round.stored, round.failed), (0, 1), "{round:?}");
    // Garbage is refused the same way, and is asked for again next round.
    server.serve_bytes(b"<html>not a CRL</html>");
    let round = fetch_round(&app).await;
    assert_eq!((round.stored, round.failed), (0, 1), "{round:?}");

    let report = app.verify(&bond, &bond.code).await;
    assert_eq!(report.indication, "PASSED", "{report:?}");
    assert!(!report
        .check("revocation")
        .explanation
        .contains("fetched from"));
}

/// One round of the upkeep's OCSP asking.
async fn ocsp_round(app: &TestApp) -> FetchRound {
    let ctx = app.ctx.clone();
    tokio::task::spawn_blocking(move || refresh_ocsp_answers(&ctx))
        .await
        .expect("join")
        .expect("OCSP round")
}

/// The stock `openssl ocsp` responder of a CA on a loopback port, answering from an
/// OpenSSL CA database (index.txt); stopped when dropped.
struct OcspResponder {
    url: String,
    port: u16,
    child: Option<std::process::Child>,
    dir: tempfile::TempDir,
}

impl OcspResponder {
    /// Writes the CA's files; the responder runs once it is told what to answer.
    fn new(ca: &DemoCa) -> OcspResponder {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("port")
            .port();
        let dir = tempfile::tempdir().expect("dir");
        let write = |name: &str, bytes: &[u8]| {
            std::fs::write(dir.path().join(name), bytes).expect("write");
        };
        write("ca.pem", &ca.cert.to_pem().expect("pem"));
        write(
            "ca.key.pem",
            &ca.key.private_key_to_pem_pkcs8().expect("key"),
        );
        write("index.txt.attr", b"unique_subject = no\n");
        OcspResponder {
            url: format!("http://127.0.0.1:{port}/"),
            port,
            child: None,
            dir,
        }
    }

    /// (Re)starts the responder on its port with a CA database listing each
    /// certificate as valid, or revoked at the time given (the tool reads its
    /// database once).
    fn answer_for(&mut self, certs: &[(&X509, Option<chrono::DateTime<Utc>>)]) {
        self.stop();
        let time = |t: chrono::DateTime<Utc>| t.format("%y%m%d%H%M%SZ").to_string();
        let mut index = String::new();
        for (cert, revoked_at) in certs {
            let expiry = time(Utc::now() + Duration::days(365));
            let mut serial = serial_hex(cert).expect("serial").to_ascii_uppercase();
            if serial.len() % 2 == 1 {
                serial.insert(0, '0');
            }
            let revoked = revoked_at.map(time).unwrap_or_default();
            let status = if revoked_at.is_some() { 'R' } else { 'V' };
            index.push_str(&format!(
                "{status}\t{expiry}\t{revoked}\t{serial}\tunknown\t/CN={serial}\n"
            ));
        }
        std::fs::write(self.dir.path().join("index.txt"), index).expect("index");
        let mut child = std::process::Command::new("openssl")
            .args(["ocsp", "-index", "index.txt", "-port"])
            .arg(self.port.to_string())
            .args(["-CA", "ca.pem", "-rsigner", "ca.pem", "-rkey", "ca.key.pem"])
            .args(["-nmin", "60"])
            .current_dir(self.dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("the openssl tool");
        wait_until_listening(&mut child);
        self.child = Some(child);
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Waits until the `openssl ocsp` child says it accepts connections, then keeps
/// draining its stderr (a closed pipe would kill it). Probing the port with an empty
/// connection instead would hang the tool's single-threaded responder.
fn wait_until_listening(child: &mut std::process::Child) {
    use std::io::BufRead;
    let stderr = child.stderr.take().expect("stderr");
    let (ready, listening) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if line.contains("waiting for OCSP client connections") {
                let _ = ready.send(());
            }
        }
    });
    listening
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("openssl ocsp listening");
}

impl Drop for OcspResponder {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn the_ocsp_responder_a_certificate_names_is_asked_and_named(app: TestApp) {
    let pki = TestPki::set_up(&app).await;
    let mut responder = OcspResponder::new(&pki.ca);
    let mut spec = IssuerSpec::new(GUARANTOR, &demo_uscc("guarantor"));
    spec.ocsp_url = Some(responder.url.clone());
    let cert = pki.ca.issue(&spec).expect("certificate");
    let other = pki.ca.issue(&spec).expect("certificate");
    // One good and one revoked certificate in the CA's database.
    responder.answer_for(&[
        (&cert.cert, None),
        (&other.cert, Some(Utc::now() - Duration::days(1))),
    ]);
    let operator = app.as_operator().await;
    let guarantor = operator
        .organization_with_uscc(&demo_uscc("guarantor"))
        .await;
    operator
        .issuer_certificate(&guarantor, &pem(&cert.cert), Some(&key_pem(&cert.key)))
        .await;
    let bond = app
        .bond_on_new_tender("enterprise1", "guarantor", "BZ-OCSP-1")
        .await;

    let round = ocsp_round(&app).await;
    assert_eq!((round.stored, round.failed), (1, 0), "{round:?}");
    let report = app.verify(&bond, &bond.code).await;
    assert_eq!(report.indication, "PASSED", "{report:?}");
    let revocation = report.check("revocation");
    assert!(
        revocation
            .explanation
            .contains(&format!("ocsp ({}, produced at ", responder.url)),
        "{revocation:?}"
    );
    // Held until it is due: the next round does not ask again.
    assert_eq!(ocsp_round(&app).await.stored, 0);

    // The CA learns that the key was compromised before the bond was signed. Once the
    // held answer is due, the responder's new answer decides, without any CRL.
    responder.answer_for(&[
        (&cert.cert, Some(Utc::now() - Duration::hours(1))),
        (&other.cert, Some(Utc::now() - Duration::days(1))),
    ]);
    app.advance_clock(Duration::minutes(45));
    let round = ocsp_round(&app).await;
    assert_eq!((round.stored, round.failed), (1, 0), "{round:?}");
    let report = app.verify(&bond, &bond.code).await;
    assert_eq!(
        report.sub_indication.as_deref(),
        Some("REVOKED"),
        "{report:?}"
    );
    assert!(report.check("revocation").explanation.contains("ocsp ("));
}

async fn a_certificate_naming_its_distribution_point_is_registered_without_an_upload(app: TestApp) {
    let operator = app.as_operator().await;
    // A CA whose CRL the operator never uploads: it publishes it at its URL.
    let ca = DemoCa::new("Publishing CA", KeyType::EcP256).expect("CA");
    operator.trust_anchor("publishing CA", &pem(&ca.cert)).await;
    let server = CrlServer::start();
    server.serve(&crl_revoking(&ca, &[], 1));
    let guarantor = operator
        .organization_with_uscc(&demo_uscc("guarantor"))
        .await;
    let mut spec = IssuerSpec::new(GUARANTOR, &demo_uscc("guarantor"));
    spec.crl_distribution_point = Some(server.url.clone());
    let cert = ca.issue(&spec).expect("certificate");
    operator
        .issuer_certificate(&guarantor, &pem(&cert.cert), Some(&key_pem(&cert.key)))
        .await;
    assert_eq!(server.requests(), 1);
    // The upkeep finds it current and leaves the CA's server alone.
    assert_eq!(fetch_round(&app).await.stored, 0);
    assert_eq!(server.requests(), 1);
}
