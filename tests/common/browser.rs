//! Headless Chromium (Debian's chromium, driven through chromedriver) for the tests that
//! need a real browser: the status page, CORS. Tests check `require_tools` first.

use super::processes::{poll_until, spawn_listening, Proc};
use fantoccini::{Client, ClientBuilder};
use serde_json::{json, Value};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The tools a browser test needs, for `require_tools`.
pub const BROWSER_TOOLS: [&str; 2] = ["chromedriver", "/usr/bin/chromium"];

/// A headless Chromium session, driven from blocking test code.
pub struct Browser {
    pub io: tokio::runtime::Runtime,
    pub client: Client,
    _driver: Proc,
}

impl Browser {
    pub fn start() -> Self {
        let (driver, port) = spawn_listening(|port| {
            let mut driver = Command::new("chromedriver");
            driver
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            driver
        });
        let io = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let capabilities = json!({
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1400,900"],
            }
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        let client = io
            .block_on(
                ClientBuilder::native()
                    .capabilities(capabilities)
                    .connect(&format!("http://127.0.0.1:{port}")),
            )
            .unwrap();
        Self {
            io,
            client,
            _driver: driver,
        }
    }

    /// Runs `script` in the page; its return value.
    pub fn run(&self, script: &str) -> Value {
        self.io
            .block_on(self.client.execute(script, Vec::new()))
            .unwrap()
    }

    /// Runs `script` in the page with a callback as its last argument (`arguments[0]` when
    /// no other is given); what the script passes to it.
    pub fn run_async(&self, script: &str) -> Value {
        self.io
            .block_on(self.client.execute_async(script, Vec::new()))
            .unwrap()
    }

    /// Opens `url`.
    pub fn goto(&self, url: &str) {
        self.io.block_on(self.client.goto(url)).unwrap();
    }

    /// The text of the first element matching `selector`, if there is one.
    pub fn text(&self, selector: &str) -> Option<String> {
        let script = format!(
            "const e = document.querySelector({}); return e ? e.textContent : null;",
            json!(selector)
        );
        self.run(&script).as_str().map(str::to_string)
    }

    /// Waits until `selector`'s text satisfies `want`.
    pub fn wait_text(&self, selector: &str, want: impl Fn(&str) -> bool) {
        poll_until(Duration::from_secs(15), || {
            self.text(selector).filter(|t| want(t)).map(|_| ())
        })
        .unwrap_or_else(|| panic!("{selector} shows {:?}", self.text(selector)));
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let client = self.client.clone();
        let _ = self.io.block_on(client.close());
    }
}
