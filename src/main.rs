use clap::Parser;

fn main() {
    let cli = baohan::cli::Cli::parse();
    match baohan::cli::run(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(2);
        }
    }
}
