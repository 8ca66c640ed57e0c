//! A small command-line parser: flags (`--name VALUE` or `--name=VALUE`), switches and
//! positionals, with an error for anything left over.

use anyhow::{Context, bail};

pub(crate) struct Args {
    words: Vec<String>,
}

impl Args {
    pub(crate) fn new(words: Vec<String>) -> Self {
        Self { words }
    }

    /// Removes a switch; true if it was there.
    pub(crate) fn switch(&mut self, name: &str) -> bool {
        let before = self.words.len();
        self.words.retain(|w| w != name);
        self.words.len() != before
    }

    /// Removes `name VALUE` or `name=VALUE`.
    pub(crate) fn value(&mut self, name: &str) -> anyhow::Result<Option<String>> {
        let prefix = format!("{name}=");
        if let Some(i) = self.words.iter().position(|w| w.starts_with(&prefix)) {
            return Ok(Some(self.words.remove(i)[prefix.len()..].to_owned()));
        }
        let Some(i) = self.words.iter().position(|w| w == name) else {
            return Ok(None);
        };
        if i + 1 >= self.words.len() {
            bail!("{name} needs a value");
        }
        self.words.remove(i);
        Ok(Some(self.words.remove(i)))
    }

    /// A flag parsed with `FromStr`, or `default`.
    pub(crate) fn parsed<T: std::str::FromStr>(
        &mut self,
        name: &str,
        what: &str,
    ) -> anyhow::Result<Option<T>> {
        self.value(name)?
            .map(|v| {
                v.parse()
                    .map_err(|_| anyhow::anyhow!("{name} takes {what}, not `{v}`"))
            })
            .transpose()
    }

    /// A required flag parsed with `FromStr`.
    pub(crate) fn required<T: std::str::FromStr>(
        &mut self,
        name: &str,
        what: &str,
    ) -> anyhow::Result<T> {
        self.parsed(name, what)?
            .with_context(|| format!("{name} is required ({what})"))
    }

    /// The next positional argument.
    pub(crate) fn positional(&mut self) -> Option<String> {
        let i = self.words.iter().position(|w| !w.starts_with("--"))?;
        Some(self.words.remove(i))
    }

    /// Fails on anything not consumed.
    pub(crate) fn finish(self) -> anyhow::Result<()> {
        match self.words.first() {
            Some(word) => bail!("unexpected argument `{word}` (see `chaperone help`)"),
            None => Ok(()),
        }
    }
}
