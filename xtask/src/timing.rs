//! How the benches time things: median wall times of commands and closures.
//!
//! Every bench part measures with these, so a "median of N runs" means the
//! same everywhere in the report.

use anyhow::{Context, Result, bail};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The middle one of `values` (the upper middle of an even count). Timings
/// are never NaN, so every pair of them compares.
pub fn median<T: Copy + PartialOrd>(mut values: Vec<T>) -> T {
    values.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    values[values.len() / 2]
}

/// Median wall time of `runs` runs of `cmd`, after one warm-up run.
pub fn time(runs: usize, cmd: &mut Command) -> Result<Duration> {
    Ok(time_all(runs, &mut [cmd])?[0])
}

/// Median wall times of `cmds`, each run once to warm up and then `runs`
/// times in turn (a, b, a, b, ...), so the machine's drift in speed
/// during the runs hits each alike.
pub fn time_all(runs: usize, cmds: &mut [&mut Command]) -> Result<Vec<Duration>> {
    for cmd in cmds.iter_mut() {
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        let status = cmd.status().with_context(|| crate::display(cmd))?;
        if !status.success() {
            bail!("`{}` failed ({status})", crate::display(cmd));
        }
    }
    let mut times = vec![Vec::with_capacity(runs); cmds.len()];
    for _ in 0..runs {
        for (cmd, times) in cmds.iter_mut().zip(&mut times) {
            let start = Instant::now();
            cmd.status()?;
            times.push(start.elapsed());
        }
    }
    Ok(times.into_iter().map(median).collect())
}

/// Median wall time of `runs` runs of `f(i)`, with no warm-up (each run
/// gets its own index, so it can use a fresh repository or directory).
pub fn time_each(runs: usize, mut f: impl FnMut(usize) -> Result<()>) -> Result<Duration> {
    let mut times = Vec::with_capacity(runs);
    for i in 0..runs {
        let start = Instant::now();
        f(i)?;
        times.push(start.elapsed());
    }
    Ok(median(times))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_is_the_middle_value_or_the_upper_middle() {
        assert_eq!(median(vec![3, 1, 2]), 2);
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 3.0);
        let ms = Duration::from_millis;
        assert_eq!(median(vec![ms(9), ms(1), ms(5)]), ms(5));
    }
}
