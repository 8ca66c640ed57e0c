//! The command line as a user meets it: `--help` on every command and subcommand, errors that
//! name the flag, shell completions.

use crate::chaperone;

fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let output = chaperone().args(args).output().unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn every_command_and_subcommand_has_help() {
    let commands: &[&[&str]] = &[
        &[],
        &["up"],
        &["serve"],
        &["deploy"],
        &["wallet"],
        &["wallet", "create"],
        &["agent"],
        &["agent", "register"],
        &["agent", "unregister"],
        &["agent", "list"],
        &["token"],
        &["token", "create"],
        &["token", "issue"],
        &["token", "revoke"],
        &["token", "list"],
        &["policy"],
        &["policy", "set"],
        &["policy", "show"],
        &["policy", "test"],
        &["verify"],
        &["export"],
        &["mcp"],
        &["mcp", "disclose"],
        &["completions"],
    ];
    for command in commands {
        let args: Vec<&str> = command.iter().copied().chain(["--help"]).collect();
        let (code, stdout, stderr) = run(&args);
        assert_eq!(code, Some(0), "{args:?}: {stderr}");
        assert!(stdout.contains("Usage: chaperone"), "{args:?}: {stdout}");
    }
    let (_, stdout, _) = run(&["up", "--help"]);
    for flag in [
        "--data-dir",
        "--port",
        "--anvil-port",
        "--rpc-url",
        "--json",
        "--log-format",
    ] {
        assert!(stdout.contains(flag), "up --help lists {flag}: {stdout}");
    }
}

#[test]
fn a_bad_or_missing_flag_is_named_and_exits_1() {
    for (args, named) in [
        (&["up", "--port", "eighty"][..], "--port"),
        (&["deploy", "--rpc-url", "x", "--salt", "zz"][..], "--salt"),
        (&["policy", "test", "p.toml", "--amount", "1"][..], "--to"),
        (
            &["export", "--server", "x", "--what", "records"][..],
            "--agent",
        ),
        (
            &["export", "--server", "x", "--format", "xml"][..],
            "--format",
        ),
        (&["up", "--frobnicate"][..], "--frobnicate"),
        // A token needs a name, as an argument or as `--name`, not both.
        (
            &["token", "create", "--server", "x", "--role", "approver"][..],
            "NAME",
        ),
        (
            &[
                "token", "create", "--server", "x", "--role", "approver", "a", "--name", "b",
            ][..],
            "--name",
        ),
        (&["--log-format", "xml", "up"][..], "--log-format"),
    ] {
        let (code, _, stderr) = run(args);
        // 1, not clap's 2: `policy test` and `verify` answer 2 for "denied" and "invalid".
        assert_eq!(code, Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(named), "{args:?} names {named}: {stderr}");
    }
}

#[test]
fn completions_are_printed_for_bash_and_zsh() {
    for shell in ["bash", "zsh"] {
        let (code, stdout, stderr) = run(&["completions", shell]);
        assert_eq!(code, Some(0), "{stderr}");
        assert!(
            stdout.contains("chaperone") && stdout.contains("policy"),
            "{shell}"
        );
    }
}
