//! The baselines every figure is a ratio to, run on the same machine in the same run:
//!
//! - a trivial actix-web handler (this binary, re-run as `loadbench trivial-server PORT`, with
//!   one HTTP worker a core), for the HTTP figures, run just before and just after each of them;
//! - a raw durable pipeline, written directly with sqlx and lapin against the same PostgreSQL
//!   and RabbitMQ: per task one insert, one persistent publish awaiting its confirm (to a
//!   quorum queue, as the engine's), one consume, two updates, one ack; for the engine's
//!   end-to-end figures, run before and after the modes.

use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Connection, ConnectionProperties};
use sea_orm::sqlx;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Serves `GET /` → `ok` on `port` until killed: the trivial handler.
pub fn trivial_server(port: u16) -> std::io::Result<()> {
    actix_web::rt::System::new().block_on(async move {
        actix_web::HttpServer::new(|| {
            actix_web::App::new()
                .default_service(actix_web::web::to(|| async { actix_web::HttpResponse::Ok().body("ok") }))
        })
        .workers(std::thread::available_parallelism().map_or(2, |n| n.get()))
        .bind(("127.0.0.1", port))?
        .run()
        .await
    })
}

/// The trivial handler, in its own process; killed when dropped.
pub struct Trivial {
    pub child: Child,
    pub addr: std::net::SocketAddr,
}

impl Trivial {
    pub async fn start() -> Result<Self, String> {
        let port = crate::system::free_port()?;
        let me = std::env::current_exe().map_err(|e| e.to_string())?;
        let child = Command::new(me)
            .args(["trivial-server", &port.to_string()])
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| e.to_string())?;
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let wire = crate::load::request("GET", "/", &[], None);
        let deadline = Instant::now() + Duration::from_secs(10);
        while crate::load::Conn::new(addr).send(&wire).await.is_err() {
            if Instant::now() > deadline {
                return Err("the trivial server did not come up".into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(Self { child, addr })
    }
}

impl Drop for Trivial {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the raw pipeline did: tasks finished a second, and their latency (created → finished).
pub struct Pipeline {
    pub finished: u64,
    pub rate: f64,
    pub latencies_us: Vec<u64>,
}

/// Runs the raw pipeline with `concurrency` producers for `duration`, one consumer with that
/// prefetch, and measures what finished in that time.
pub async fn raw_pipeline(concurrency: usize, duration: Duration) -> Result<Pipeline, String> {
    let url = crate::system::fresh_pg_database().await?;
    let result = run_pipeline(&url, concurrency, duration).await;
    crate::system::drop_pg_database(&url).await;
    result
}

async fn run_pipeline(url: &str, concurrency: usize, duration: Duration) -> Result<Pipeline, String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(u32::try_from(concurrency).unwrap_or(64).max(2))
        .connect(url)
        .await
        .map_err(|e| err(&e))?;
    sqlx::query(
        "CREATE TABLE raw_tasks (id SERIAL PRIMARY KEY, state TEXT NOT NULL, created_at TIMESTAMPTZ NOT NULL DEFAULT now(), \
         started_at TIMESTAMPTZ, finished_at TIMESTAMPTZ)",
    )
    .execute(&pool)
    .await
    .map_err(|e| err(&e))?;
    let queue = format!("bench-raw-{}", crate::system::short_id());
    let connection =
        Connection::connect(&crate::system::amqp_url(), ConnectionProperties::default()).await.map_err(|e| err(&e))?;
    let mut args = FieldTable::default();
    args.insert("x-queue-type".into(), AMQPValue::LongString("quorum".into()));
    let setup = connection.create_channel().await.map_err(|e| err(&e))?;
    let durable = QueueDeclareOptions { durable: true, ..Default::default() };
    setup.queue_declare(queue.as_str().into(), durable, args).await.map_err(|e| err(&e))?;

    // The consumer: claim (running), finish, ack.
    let consuming = connection.create_channel().await.map_err(|e| err(&e))?;
    consuming
        .basic_qos(u16::try_from(concurrency).unwrap_or(64), BasicQosOptions::default())
        .await
        .map_err(|e| err(&e))?;
    let mut consumer = consuming
        .basic_consume(queue.as_str().into(), "raw".into(), BasicConsumeOptions::default(), FieldTable::default())
        .await
        .map_err(|e| err(&e))?;
    let consumer_pool = pool.clone();
    let consumer_task = tokio::spawn(async move {
        use futures_util::StreamExt;
        let (limit, mut running) = (Arc::new(tokio::sync::Semaphore::new(concurrency)), Vec::new());
        while let Some(Ok(delivery)) = consumer.next().await {
            let (pool, limit) = (consumer_pool.clone(), limit.clone());
            running.push(tokio::spawn(async move {
                let _permit = limit.acquire().await;
                let id: i32 = std::str::from_utf8(&delivery.data).ok().and_then(|s| s.parse().ok()).unwrap_or(0);
                let _ = sqlx::query("UPDATE raw_tasks SET state = 'running', started_at = now() WHERE id = $1")
                    .bind(id)
                    .execute(&pool)
                    .await;
                let _ = sqlx::query("UPDATE raw_tasks SET state = 'finished', finished_at = now() WHERE id = $1")
                    .bind(id)
                    .execute(&pool)
                    .await;
                let _ = delivery.ack(BasicAckOptions::default()).await;
            }));
            running.retain(|t| !t.is_finished());
        }
    });

    // The producers: insert, publish persistently, await the confirm.
    let stop = Arc::new(AtomicBool::new(false));
    let mut producers = Vec::new();
    for _ in 0..concurrency {
        let channel = connection.create_channel().await.map_err(|e| err(&e))?;
        channel.confirm_select(ConfirmSelectOptions::default()).await.map_err(|e| err(&e))?;
        let (pool, stop, queue) = (pool.clone(), stop.clone(), queue.clone());
        producers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let Ok(id) =
                    sqlx::query_scalar::<_, i32>("INSERT INTO raw_tasks (state) VALUES ('queued') RETURNING id")
                        .fetch_one(&pool)
                        .await
                else {
                    break;
                };
                let properties = BasicProperties::default().with_delivery_mode(2);
                let published = channel
                    .basic_publish(
                        "".into(),
                        queue.as_str().into(),
                        BasicPublishOptions::default(),
                        id.to_string().as_bytes(),
                        properties,
                    )
                    .await;
                let Ok(confirm) = published else { break };
                if confirm.await.is_err() {
                    break;
                }
            }
        }));
    }
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    for producer in producers {
        let _ = producer.await;
    }
    // Everything submitted in the window finishes: measure it all, from the tasks' own times.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let open: i64 = sqlx::query_scalar("SELECT count(*) FROM raw_tasks WHERE state <> 'finished'")
            .fetch_one(&pool)
            .await
            .map_err(|e| err(&e))?;
        if open == 0 || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rows: Vec<(f64, f64)> = sqlx::query_as(
        "SELECT EXTRACT(EPOCH FROM created_at)::float8, EXTRACT(EPOCH FROM finished_at)::float8 FROM raw_tasks \
         WHERE finished_at IS NOT NULL",
    )
    .fetch_all(&pool)
    .await
    .map_err(|e| err(&e))?;
    consumer_task.abort();
    let _ = setup.queue_delete(queue.as_str().into(), QueueDeleteOptions::default()).await;
    let _ = connection.close(0, "done".into()).await;
    pool.close().await;
    Ok(Pipeline::of(&rows))
}

impl Pipeline {
    /// From (created, finished) times in seconds: the rate over the whole span, and latencies.
    pub fn of(rows: &[(f64, f64)]) -> Self {
        let first = rows.iter().map(|r| r.0).fold(f64::INFINITY, f64::min);
        let last = rows.iter().map(|r| r.1).fold(f64::NEG_INFINITY, f64::max);
        let span = (last - first).max(1e-6);
        let finished = rows.len() as u64;
        Pipeline {
            finished,
            rate: if finished == 0 { 0.0 } else { finished as f64 / span },
            latencies_us: rows.iter().map(|(c, f)| ((f - c).max(0.0) * 1e6) as u64).collect(),
        }
    }
}
