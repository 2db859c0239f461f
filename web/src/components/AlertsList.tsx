import { useId } from "react";
import { call, type Alert } from "../api/client";
import { useApi, useUser } from "../context";
import { bytes, localTime } from "../format";
import { useLoad } from "../hooks/useLoad";
import { ProblemMessage } from "./ProblemMessage";

const QUOTA_NAMES: Record<Alert["quota"], string> = {
  generations: "generations",
  storage: "storage",
  lyrics: "lyrics drafts today",
  pixel: "messages to Pixel today",
};

/** What one alert said, in a sentence. */
function sentence(alert: Alert): string {
  const amount = (n: number) => (alert.quota === "storage" ? bytes(n) : n.toString());
  const of = `${amount(alert.used)} of ${amount(alert.limit)} ${QUOTA_NAMES[alert.quota]}`;
  if (alert.type === "pace") {
    const out = alert.projected_exhaustion_at ? localTime(alert.projected_exhaustion_at) : "early";
    return `At this pace (${of}) you would run out around ${out} (an estimate).`;
  }
  return `${alert.thresholds.map((t) => `${t} %`).join(" and ")} reached: ${of}.`;
}

/** The caller's usage alerts (`GET /api/me/alerts`, the newest page) and how each went out. */
export function AlertsList() {
  const api = useApi();
  const user = useUser();
  const headingId = useId();
  const alerts = useLoad(user ? `alert-list:${user.id}` : null, () => call(api.GET("/api/me/alerts")));
  const items = alerts.data?.items ?? [];
  return (
    <section className="alert-list" aria-labelledby={headingId}>
      <h2 id={headingId}>Recent alerts</h2>
      <ProblemMessage error={alerts.error} onRetry={() => void alerts.reload()} />
      {alerts.data && items.length === 0 && <p>No alerts yet.</p>}
      {items.length > 0 && (
        <ul>
          {items.map((alert) => (
            <li key={alert.id}>
              <time dateTime={alert.created_at}>{localTime(alert.created_at)}</time>: {sentence(alert)}{" "}
              <span className="alert-list__deliveries">
                {alert.deliveries.map((d) => `${d.channel} ${d.status}`).join(", ")}
              </span>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
