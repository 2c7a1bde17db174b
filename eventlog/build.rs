//! Re-embeds the migrations into the tests (`#[sqlx::test(migrations = "../migrations")]`)
//! whenever one is added or changed.
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
