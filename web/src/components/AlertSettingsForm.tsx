import { useEffect, useId, useState, type FormEvent } from "react";
import { call, type AlertSettings } from "../api/client";
import { useApi, useUser } from "../context";
import { useLoad } from "../hooks/useLoad";
import { ProblemMessage } from "./ProblemMessage";

const SLOTS = 3;

/** What the caller is told of their usage, and how: up to three thresholds, email, a webhook, the pace. */
export function AlertSettingsForm() {
  const api = useApi();
  const user = useUser();
  const ids = useId();
  const stored = useLoad(user ? `alerts:${user.id}` : null, () => call(api.GET("/api/me/alerts/settings")));
  const [thresholds, setThresholds] = useState<string[]>(Array(SLOTS).fill(""));
  const [email, setEmail] = useState(true);
  const [webhook, setWebhook] = useState("");
  const [pace, setPace] = useState(true);
  const [saved, setSaved] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  const show = (settings: AlertSettings) => {
    setThresholds(Array.from({ length: SLOTS }, (_, i) => settings.thresholds[i]?.toString() ?? ""));
    setEmail(settings.channels.email);
    setWebhook(settings.channels.webhook_url ?? "");
    setPace(settings.pace);
  };
  useEffect(() => {
    if (stored.data) show(stored.data);
  }, [stored.data]);

  const save = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    setSaved(null);
    try {
      const body: AlertSettings = {
        thresholds: thresholds.filter((t) => t.trim() !== "").map(Number),
        channels: { email, webhook_url: webhook.trim() || null },
        pace,
      };
      const now = await call(api.PUT("/api/me/alerts/settings", { body }));
      show(now);
      setSaved("Alert settings saved.");
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <form className="alerts" onSubmit={(e) => void save(e)} aria-labelledby={`${ids}-heading`}>
      <h2 id={`${ids}-heading`}>Alerts</h2>
      <ProblemMessage error={stored.error} onRetry={() => void stored.reload()} />
      <fieldset>
        <legend>Tell me when I have used (% of a quota)</legend>
        {thresholds.map((value, at) => (
          <label key={at} className="alerts__threshold">
            Threshold {at + 1}
            <input
              type="number"
              min={1}
              max={100}
              value={value}
              onChange={(e) => setThresholds((all) => all.map((t, i) => (i === at ? e.target.value : t)))}
            />
          </label>
        ))}
      </fieldset>
      <label>
        <input type="checkbox" checked={email} onChange={(e) => setEmail(e.target.checked)} /> By email
      </label>
      <label htmlFor={`${ids}-webhook`}>Webhook URL (https, optional)</label>
      <input
        id={`${ids}-webhook`}
        type="url"
        value={webhook}
        placeholder="https://hooks.example.com/son1k"
        onChange={(e) => setWebhook(e.target.value)}
      />
      <label>
        <input type="checkbox" checked={pace} onChange={(e) => setPace(e.target.checked)} /> Warn me when my pace
        would use a month's generations early
      </label>
      <button type="submit" disabled={busy || !stored.data}>
        Save alert settings
      </button>
      {saved && <p role="status">{saved}</p>}
      <ProblemMessage error={error} />
    </form>
  );
}
