//! The README's tour, run as written against the real binary, so it cannot drift from the
//! server: every command must succeed (its `api` helper stops at any HTTP error).

use std::process::Command;

use crate::helpers::{ADMIN_PASSWORD, Server, serve};

/// The shell block under "## A short tour" in the README.
fn readme_tour() -> String {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let after = readme
        .split("## A short tour")
        .nth(1)
        .expect("a tour section");
    let block = after.split("```sh\n").nth(1).expect("a sh block");
    block.split("```").next().unwrap().to_owned()
}

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[actix_web::test]
async fn the_readme_tour_runs_as_written() {
    if !(have("curl") && have("jq") && have("bash")) {
        assert_ne!(
            std::env::var("VOUCHERD_TOUR_TEST").as_deref(),
            Ok("require"),
            "the tour needs bash, curl and jq"
        );
        eprintln!("skipped: the README tour needs bash, curl and jq");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (child, base) = serve(&dir.path().join("data"));
    let _server = Server(child);
    let tour = readme_tour();
    assert!(tour.starts_with("B=http://127.0.0.1:8080\n"), "{tour}");
    let script = tour.replacen("B=http://127.0.0.1:8080", &format!("B={base}"), 1);
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .env("VOUCHERD_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the tour stopped:\n{said}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // What a reader sees: the claimed code redeemed, the shared code applicable then redeemed.
    assert!(said.contains("\"discount_cents\":1499"), "{said}");
    assert!(said.contains("\"status\":\"applicable\""), "{said}");
    assert!(
        said.contains("\"customer_ref\":\"buyer@shop.example\""),
        "{said}"
    );
}
