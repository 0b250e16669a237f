use clap::Parser;

fn main() {
    // Every unusable command line exits 64 (EX_USAGE): `baohan verify` keeps 0, 1 and 2
    // for the verdict alone, and a missing argument must not read as INDETERMINATE.
    let cli = match baohan::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            std::process::exit(if e.use_stderr() {
                baohan::pki::cli::EXIT_USAGE
            } else {
                0
            });
        }
    };
    match baohan::cli::run(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(2);
        }
    }
}
