//! Charts of campaign reports, rendered server-side by `charts-rs` (SVG; PNG through its built-in
//! font and rasteriser — no system libraries).

use charts_rs::{LineChart, Series};

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
    let mut chart = LineChart::new(
        vec![
            Series::new("Claims".to_owned(), claimed),
            Series::new("Redemptions".to_owned(), redeemed),
        ],
        days,
    );
    chart.title.text = format!("{campaign}: claims and redemptions per day");
    chart.sub_title.text = format!(
        "codes per day, by date in {timezone} · {} claimed, {} redeemed ({:.0} %)",
        report.claimed,
        report.redeemed,
        report.redemption_rate * 100.0
    );
    chart.width = 800.0;
    chart.height = 420.0;
    let svg = chart
        .svg()
        .map_err(|e| format!("rendering the chart: {e}"))?;
    if png {
        charts_rs::svg_to_png(&svg).map_err(|e| format!("rasterising the chart: {e}"))
    } else {
        Ok(svg.into_bytes())
    }
}
