//! Who the control channel lets in, runner by runner (processes on loopback): a runner must
//! prove the lab secret over TLS; another secret, a plain-text runner and a second runner
//! each get a precise refusal, and the runner being served is served throughout. A runner
//! also refuses a target that cannot prove the secret back, and one that does not speak
//! TLS. Raw malformed hellos are rows of `control_malformed.rs`.

mod control_rig;

use reference_target::remote::channel::{Acceptor, NEEDS_TLS};
use reference_target::remote::proto::{read_line, write_msg, Reply, PROTOCOL};
use reference_target::remote::{RemoteError, RemoteTarget, Security};
use tokio::io::BufReader;

use control_rig::{refused, runner, spawn_target, start_and_stop, LabSecret, BOUND};

#[tokio::test]
async fn only_a_runner_proving_the_lab_secret_gets_in() {
    let lab = LabSecret::new("lab");
    let other = LabSecret::new("other");
    let p = spawn_target(Some(&lab));

    // another secret: refused, naming what to do
    refused(runner(&p, &other.security()).await, "authentication failed");
    // plain text to the TLS channel: told the channel needs TLS and the secret
    refused(runner(&p, &Security::Insecure).await, NEEDS_TLS);

    // (a missing, garbled, replayed or reflected proof: the rows `ctl-*` of
    // control_malformed.rs)

    // the real runner gets in, and is served while others are refused
    let t = runner(&p, &lab.security()).await.expect("hello");
    assert_eq!(t.info().fingerprint, p.fingerprint);
    refused(runner(&p, &other.security()).await, "authentication failed");
    refused(runner(&p, &Security::Insecure).await, NEEDS_TLS);
    // a second runner with the secret is told who holds the target; without it, nothing
    // about the holder
    refused(runner(&p, &lab.security()).await, "busy: runner 127.0.0.1:");
    start_and_stop(&t)
        .await
        .expect("the served runner is served after all the refusals");
}

#[tokio::test]
async fn a_runner_refuses_a_target_without_its_secret_or_tls() {
    // a target started with --insecure does not speak TLS
    let p = spawn_target(None);
    let lab = LabSecret::new("runner");
    match runner(&p, &lab.security()).await {
        Err(RemoteError::Channel { message, .. }) => {
            assert!(message.contains("TLS handshake"), "{message}");
            assert!(message.contains("--insecure"), "{message}");
        }
        other => panic!("a runner with a secret reached an insecure target: {other:?}"),
    }
    // and an insecure runner is served there, with no fingerprint to show
    let t = runner(&p, &Security::Insecure).await.expect("hello");
    assert_eq!(t.info().fingerprint, None);
    drop(t);
    drop(p);

    // a target that answers hello without proving the secret, or with a wrong proof (a
    // stand-in in this process): the runner refuses it
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let impostor = LabSecret::new("impostor");
    let acceptor = Acceptor::new(impostor.security()).unwrap();
    let fake = tokio::spawn(async move {
        for proof in [None, Some("00".repeat(32))] {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut io = BufReader::new(acceptor.accept(tcp).await.unwrap().stream);
            read_line(&mut io).await.unwrap();
            let hello = Reply::Hello {
                protocol: PROTOCOL,
                version: "0".into(),
                fabric: "sim".into(),
                device: "sim0".into(),
                target: "reference".into(),
                caps: None,
                real: None,
                proof,
            };
            write_msg(io.get_mut(), &hello).await.unwrap();
        }
    });
    for _ in 0..2 {
        match RemoteTarget::connect(addr, &lab.security(), BOUND).await {
            Err(RemoteError::Channel { message, .. }) => assert!(
                message.contains("did not prove it holds the lab secret"),
                "{message}"
            ),
            other => panic!("a target without the secret was trusted: {other:?}"),
        }
    }
    fake.await.unwrap();
}
