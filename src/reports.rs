//! Charts of campaign reports, rendered server-side by `charts-rs` (SVG; PNG through its built-in
//! font and rasteriser — no system libraries). Bars for up to [`BARS_UP_TO`] days (a line needs
//! two days and reads poorly on a few), lines beyond.

use charts_rs::{BarChart, LineChart, Series};

/// The most days drawn as bars.
pub const BARS_UP_TO: usize = 14;

use crate::domain::report::CampaignReport;

/// The claims and redemptions per day of `report` as SVG, or PNG bytes.
pub fn chart(
    report: &CampaignReport,
    campaign: &str,
    timezone: &str,
    png: bool,
) -> Result<Vec<u8>, String> {
    let days: Vec<String> = report.by_day.iter().map(|d| d.date.to_string()).collect();
    let claimed: Vec<f32> = report.by_day.iter().map(|d| d.claimed as f32).collect();
    let redeemed: Vec<f32> = report.by_day.iter().map(|d| d.redeemed as f32).collect();
    let (days, claimed, redeemed) = if days.is_empty() {
        (vec!["no activity yet".to_owned()], vec![0.0], vec![0.0])
    } else {
        (days, claimed, redeemed)
    };
    let series = vec![
        Series::new("Claims".to_owned(), claimed),
        Series::new("Redemptions".to_owned(), redeemed),
    ];
    let title = format!("{campaign}: claims and redemptions per day");
    let sub_title = format!(
        "codes per day, by date in {timezone} · {} claimed, {} redeemed ({:.0} %)",
        report.claimed,
        report.redeemed,
        report.redemption_rate * 100.0
    );
    // Both kinds have the same fields but no common trait to set them through.
    macro_rules! draw {
        ($chart:expr) => {{
            let mut chart = $chart;
            chart.title.text = title;
            chart.sub_title.text = sub_title;
            chart.width = 800.0;
            chart.height = 420.0;
            chart.svg()
        }};
    }
    let svg = if days.len() <= BARS_UP_TO {
        draw!(BarChart::new(series, days))
    } else {
        draw!(LineChart::new(series, days))
    }
    .map_err(|e| format!("rendering the chart: {e}"))?;
    if png {
        charts_rs::svg_to_png(&svg).map_err(|e| format!("rasterising the chart: {e}"))
    } else {
        Ok(svg.into_bytes())
    }
}
