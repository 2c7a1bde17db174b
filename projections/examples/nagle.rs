#![allow(clippy::unwrap_used, clippy::print_stdout)]
use std::time::Instant;
#[tokio::main]
async fn main() {
    for url in ["postgres://postgres@127.0.0.1:5432/postgres", "postgres://postgres@localhost/postgres?host=/var/run/postgresql"] {
        let pool = sqlx::PgPool::connect(url).await.unwrap();
        for size in [1_000usize, 10_000, 15_000, 20_000, 50_000, 200_000, 1_000_000] {
            let text = "x".repeat(size);
            let n = 20;
            let started = Instant::now();
            for _ in 0..n {
                let _: i32 = sqlx::query_scalar("select length($1)").bind(&text).fetch_one(&pool).await.unwrap();
            }
            println!("{url:60} {size:>8} bytes: {:>8.2} ms per query", started.elapsed().as_secs_f64() * 1000.0 / n as f64);
        }
    }
}
