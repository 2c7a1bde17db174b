//! Re-embeds the migrations in `#[sqlx::test]` binaries when they change.

fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
