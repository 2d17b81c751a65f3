//! Every input a fuzz target ever crashed on (fuzz/regressions/TARGET/), replayed through the same
//! code as the target (fuzz/src/cases.rs, included here) in the ordinary test run: each must now
//! return, an error or not, without a panic.

#[path = "../../fuzz/src/cases.rs"]
mod cases;

#[test]
fn every_fuzz_crash_input_is_handled() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions");
    let mut replayed = 0;
    for target in std::fs::read_dir(&root).unwrap() {
        let target = target.unwrap();
        let name = target.file_name().to_string_lossy().into_owned();
        for input in std::fs::read_dir(target.path()).unwrap() {
            let input = input.unwrap().path();
            let data = std::fs::read(&input).unwrap();
            let outcome = std::panic::catch_unwind(|| cases::run(&name, &data));
            assert!(outcome.is_ok(), "{name}: {} still panics", input.display());
            replayed += 1;
        }
    }
    assert!(replayed > 0, "no regression inputs under {}", root.display());
}
