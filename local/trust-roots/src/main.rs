//! `make bench` only (never deployed): a function that answers each event with one DynamoDB call,
//! built with the production SDK config (`lambda_sdk_config_trusting`) and one of four ways of
//! getting the HTTPS client's trust roots, chosen by `TRUST_ROOTS`:
//!
//! - `compiled`: the Amazon Trust Services roots compiled into the binary (what the functions use);
//! - `bundle`: one CA bundle file read from disk (`SSL_CERT_FILE`, else Amazon Linux's
//!   `/etc/pki/tls/certs/ca-bundle.crt`, else Debian's `/etc/ssl/certs/ca-certificates.crt`);
//! - `native`: the platform's roots as `rustls-native-certs` finds them (the SDK's default);
//! - `lazy`: compiled-in roots, but the whole client built on the first event instead of before
//!   the first poll.
//!
//! The SDK parses the roots when it builds its connector, on the first request, so the difference
//! shows in the time to the first answer rather than to the first poll: the bench reports both.

use aws_smithy_http_client::tls::TrustStore;
use lambda_http::{run, service_fn, Body, Error, Request, Response};
use son1k_app::config::Config;
use son1k_app::state::{aws_trust_store, lambda_sdk_config_trusting, Endpoints};
use tokio::sync::OnceCell;

fn client(config: &Config, trust: TrustStore) -> Result<aws_sdk_dynamodb::Client, Error> {
    let sdk = lambda_sdk_config_trusting(config, trust)?;
    let mut builder = aws_sdk_dynamodb::config::Builder::from(&sdk);
    if let Some(url) = Endpoints::from_env().dynamodb {
        builder = builder.endpoint_url(url);
    }
    Ok(aws_sdk_dynamodb::Client::from_conf(builder.build()))
}

fn bundle() -> Result<TrustStore, Error> {
    let path = std::env::var("SSL_CERT_FILE").ok().unwrap_or_else(|| {
        [
            "/etc/pki/tls/certs/ca-bundle.crt",
            "/etc/ssl/certs/ca-certificates.crt",
        ]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .unwrap_or_default()
        .to_owned()
    });
    Ok(TrustStore::empty().with_pem_certificate(std::fs::read(path)?))
}

async fn answer(client: &aws_sdk_dynamodb::Client) -> Result<Response<Body>, Error> {
    let tables = client.list_tables().limit(1).send().await?;
    Ok(Response::new(Body::from(format!(
        "{} table(s)",
        tables.table_names().len()
    ))))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let config = Config::from_env()?;
    let variant = std::env::var("TRUST_ROOTS").unwrap_or_else(|_| "compiled".into());
    let eager = match variant.as_str() {
        "compiled" => Some(aws_trust_store()),
        "bundle" => Some(bundle()?),
        "native" => Some(TrustStore::default()),
        "lazy" => None,
        other => {
            return Err(format!("TRUST_ROOTS={other:?}: compiled, bundle, native or lazy").into())
        }
    };
    let built = match eager {
        Some(trust) => Some(client(&config, trust)?),
        None => None,
    };
    let lazy = OnceCell::new();
    let config = &config;
    let built = built.as_ref();
    let lazy = &lazy;
    run(service_fn(move |_req: Request| async move {
        let client = match built {
            Some(client) => client,
            None => {
                lazy.get_or_try_init(|| async { client(config, aws_trust_store()) })
                    .await?
            }
        };
        answer(client).await
    }))
    .await
}
