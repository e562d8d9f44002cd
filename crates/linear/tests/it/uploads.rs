//! Fetching pasted images from the simulator's private uploads, and the
//! refusals that keep an issue's author from aiming the fetch at the
//! worker's own network.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cyrus_linear::uploads::{ImageFetcher, ImageRefused, ImageRules};
use cyrus_linear::{Credentials, LinearClient, LinearClientConfig};
use cyrus_sandbox::linear::{LinearSim, LinearSimOptions};
use secrecy::SecretString;

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0";

fn client(sim: &LinearSim, key: &str) -> LinearClient {
    let config = LinearClientConfig::new(
        sim.url().parse().unwrap(),
        Credentials::ApiKey(SecretString::from(key.to_owned())),
    );
    LinearClient::new(config).unwrap()
}

fn fetcher(sim: &LinearSim, allowed: &[&str]) -> ImageFetcher {
    ImageFetcher::new(ImageRules {
        upload_origin: sim.base_url().parse().unwrap(),
        allowed_hosts: allowed.iter().map(|h| h.to_string()).collect(),
        max_bytes: 64 * 1024,
        timeout: Duration::from_secs(5),
    })
    .unwrap()
}

/// A plain listener that counts connections: proof a refused URL was never
/// contacted.
async fn counting_listener() -> (u16, Arc<AtomicUsize>) {
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = tcp.local_addr().unwrap().port();
    let hits = Arc::new(AtomicUsize::new(0));
    let seen = hits.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = tcp.accept().await {
            seen.fetch_add(1, Ordering::SeqCst);
            drop(socket);
        }
    });
    (port, hits)
}

#[tokio::test]
async fn an_upload_needs_the_token_and_is_typed_from_its_bytes() {
    let sim = LinearSim::start(LinearSimOptions::default()).await.unwrap();
    let url = sim
        .control()
        .add_upload("application/octet-stream", PNG.to_vec());
    assert!(
        !url.contains(".png"),
        "upload URLs have no extension: {url}"
    );
    let images = fetcher(&sim, &[]);
    assert!(images.is_upload(&url));

    let image = images
        .fetch(&url, &client(&sim, sim.api_key()))
        .await
        .unwrap();
    assert_eq!(image.mime, "image/png");
    assert_eq!(image.bytes, PNG);
    assert!(
        image
            .data_uri()
            .starts_with("data:image/png;base64,iVBORw0KGgo")
    );

    let wrong = images.fetch(&url, &client(&sim, "lin_api_wrong")).await;
    assert_eq!(wrong, Err(ImageRefused::Status(401)));

    let text = sim.control().add_upload("image/png", b"<svg/>".to_vec());
    let not_image = images.fetch(&text, &client(&sim, sim.api_key())).await;
    assert_eq!(not_image, Err(ImageRefused::NotAnImage));
    sim.shutdown().await;
}

#[tokio::test]
async fn private_and_unlisted_targets_are_refused_without_contact() {
    let sim = LinearSim::start(LinearSimOptions::default()).await.unwrap();
    let (port, hits) = counting_listener().await;
    // `localhost` is listed, so only the address check can refuse it.
    let images = fetcher(&sim, &["localhost"]);
    let linear = client(&sim, sim.api_key());
    let cases = [
        format!("https://127.0.0.1:{port}/a.png"),
        format!("https://10.0.0.1:{port}/a.png"),
        format!("https://169.254.169.254:{port}/latest/meta-data"),
        format!("https://[::1]:{port}/a.png"),
        format!("https://localhost:{port}/a.png"),
        format!("http://127.0.0.1:{port}/a.png"),
        format!("https://unlisted.example:{port}/a.png"),
    ];
    for url in &cases {
        let got = images.fetch(url, &linear).await;
        assert!(
            matches!(
                got,
                Err(ImageRefused::PrivateAddress(_)
                    | ImageRefused::NotHttps
                    | ImageRefused::HostNotAllowed(_))
            ),
            "{url}: {got:?}"
        );
    }
    // A redirect from Linear's own origin to a private address is refused
    // at the hop.
    let redirect = sim
        .control()
        .add_upload_redirect(&format!("https://127.0.0.1:{port}/a.png"));
    let got = images.fetch(&redirect, &linear).await;
    assert!(
        matches!(got, Err(ImageRefused::PrivateAddress(_))),
        "{got:?}"
    );
    let to_localhost = sim
        .control()
        .add_upload_redirect(&format!("https://localhost:{port}/a.png"));
    let got = images.fetch(&to_localhost, &linear).await;
    assert!(
        matches!(got, Err(ImageRefused::PrivateAddress(_))),
        "{got:?}"
    );
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "a refused target was contacted"
    );
    sim.shutdown().await;
}
