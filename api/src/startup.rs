//! `Application`: the database, the engine (dispatcher, plus the runner in embedded mode) and the
//! HTTP server, bound to its own listener (port 0 in tests).

use crate::origin::{LocalAddr, TrustedProxies};
use crate::settings::ApiSettings;
use crate::state::AppState;
use crate::{daytona, veeam, vercel};
use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpResponse, HttpServer, web};
use sea_orm::DatabaseConnection;
use std::net::TcpListener;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use worker::broker::Broker;
use worker::broker::amqp::AmqpBroker;
use worker::broker::memory::MemoryBroker;
use worker::engine::Engine;
use worker::events::Subscriptions;
use worker::startup::{Drained, connect_database, start_engine};

pub struct Application {
    port: u16,
    server: Server,
    shutdown: CancellationToken,
    engine: Engine,
    drained: Drained,
}

impl Application {
    pub async fn build(settings: ApiSettings) -> Result<Self, String> {
        let db = database(&settings).await?;

        let (broker, embedded): (Arc<dyn Broker>, bool) = match &settings.amqp_url {
            Some(url) => (Arc::new(AmqpBroker::new(url, &settings.runner)), false),
            None => (Arc::new(MemoryBroker::default()), true),
        };
        let shutdown = CancellationToken::new();
        let mut subscriptions = Subscriptions::new(&db);
        let (engine, drained) =
            start_engine(db.clone(), broker, &settings.runner, embedded, &mut subscriptions, &shutdown).await?;
        let veeam = web::Data::new(veeam::start(&db, &settings.veeam, &shutdown).await?);
        let sandboxes = web::Data::new(daytona::start(&settings.daytona, &settings.data_dir)?);
        let vercel_state = web::Data::new(vercel::start(&settings.vercel, &settings.data_dir)?);
        let credentials =
            crate::credentials::Credentials::following(&db, engine.finished(), &mut subscriptions, shutdown.clone());
        let views = crate::views::Views::following(&db, &mut subscriptions, shutdown.clone());
        subscriptions.follow(shutdown.clone());
        let state = web::Data::new(AppState {
            db,
            engine: engine.clone(),
            public_base_url: settings.public_base_url.clone(),
            trusted_proxies: TrustedProxies::parse(&settings.trusted_proxies)?,
            token_users: Default::default(),
            credentials,
            views,
            answers: Default::default(),
        });

        let listener = TcpListener::bind((settings.host.as_str(), settings.port))
            .map_err(|e| format!("cannot listen on {}:{}: {e}", settings.host, settings.port))?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .wrap(from_fn(veeam::normalize))
                .wrap(from_fn(request_span))
                .service(daytona::scope(sandboxes.clone()))
                .configure(vercel::configure(vercel_state.clone()))
                .service(crate::tasks::resource())
                .service(veeam::scope(veeam.clone()))
                .default_service(web::to(unserved))
        })
        .on_connect(|connection, extensions| {
            if let Some(Ok(local)) =
                connection.downcast_ref::<actix_web::rt::net::TcpStream>().map(|tcp| tcp.local_addr())
            {
                extensions.insert(LocalAddr(local));
            }
        })
        .workers(settings.http_workers())
        .shutdown_timeout(settings.runner.shutdown_timeout().as_secs().max(1))
        .disable_signals()
        .listen(listener)
        .map_err(|e| e.to_string())?
        .run();
        tracing::info!(port, mode = if embedded { "embedded" } else { "distributed" }, "listening");
        Ok(Self { port, server, shutdown, engine, drained })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The engine's front door, as the faces use it.
    pub fn engine(&self) -> Engine {
        self.engine.clone()
    }

    /// A handle that stops the server (and then, through `run_until_stopped`, the engine).
    pub fn stopper(&self) -> Stopper {
        Stopper { server: self.server.handle() }
    }

    /// Serves until stopped; then (the server having finished its in-flight requests) stops the
    /// engine and waits for the embedded runner to drain.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        self.shutdown.cancel();
        self.drained.wait().await;
        result
    }
}

#[derive(Clone)]
pub struct Stopper {
    server: actix_web::dev::ServerHandle,
}

impl Stopper {
    /// Stops accepting connections and lets in-flight requests finish; `run_until_stopped` then
    /// stops the engine.
    pub async fn stop(&self) {
        self.server.stop(true).await;
    }
}

/// A path that no face serves: under `/api`, a bearer-token caller's gets the Daytona face's
/// 404 and any other caller's the Veeam face's (this runs inside its scope, in the format it
/// negotiated); under `/v2/sandboxes` or `/v3/sandboxes`, the Vercel face's; a path of no
/// face, a plain 404, in no face's dialect.
async fn unserved(req: actix_web::HttpRequest) -> HttpResponse {
    let under_api = req.path().strip_prefix("/api").is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
    if under_api && crate::bearer::token(req.headers()).is_some() {
        return daytona::unserved(&req).await;
    }
    if vercel::owns(req.path()) {
        return vercel::not_found(req).await.unwrap_or_else(|err| actix_web::ResponseError::error_response(&err));
    }
    veeam::not_found(&req)
}

/// Runs each request inside a `request{method path}` span, so its log lines say which it was.
async fn request_span(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    let span = tracing::info_span!("request", method = %req.method(), path = %req.path());
    tracing::Instrument::instrument(next.call(req), span).await
}

pub async fn database(settings: &ApiSettings) -> Result<DatabaseConnection, String> {
    let url = match &settings.database_url {
        Some(url) => url.clone(),
        None => {
            std::fs::create_dir_all(&settings.data_dir)
                .map_err(|e| format!("cannot create {}: {e}", settings.data_dir.display()))?;
            format!("sqlite://{}/taskq.sqlite?mode=rwc", settings.data_dir.display())
        }
    };
    connect_database(&url).await
}
