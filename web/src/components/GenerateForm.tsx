import { useId, useState, type FormEvent } from "react";
import type { Limits, Quality, Tier } from "../api/client";
import { nextTier, QUALITY_NAMES } from "../format";
import { useGeneration } from "../hooks/useGeneration";
import { Paywall } from "./Paywall";
import { ProblemMessage } from "./ProblemMessage";

export interface GenerateFormProps {
  /** The caller's limits: the qualities offered, and whether anything is left. */
  limits: Limits;
  /** The tier table, for the paywall's next tier. */
  tiers: Tier[];
  /** The usage changed (reserved, finished): read the limits again. */
  onUsageChange?: () => void;
  onUpgrade?: () => void;
}

const STATUS_TEXT: Record<string, string> = {
  submitting: "Sending your request…",
  queued: "Queued: a provider will pick it up in a moment…",
  running: "Generating your song…",
  succeeded: "Your song is ready.",
};

const JOB_ERRORS: Record<string, string> = {
  no_provider_available: "No provider could make it right now; your generation was given back. Try again in a minute.",
  provider_rejected: "The provider refused this prompt; your generation was given back.",
  provider_output_refused: "The provider's audio could not be used; your generation was given back.",
  timed_out: "It took too long; your generation was given back.",
  storage_quota_exceeded: "The song did not fit in your storage.",
};

/** A prompt, a genre and a quality of the tier's; the job followed until its audio plays. */
export function GenerateForm({ limits, tiers, onUsageChange, onUpgrade }: GenerateFormProps) {
  const generation = useGeneration({ onUsageChange });
  const [prompt, setPrompt] = useState("");
  const [genre, setGenre] = useState("");
  const [quality, setQuality] = useState<Quality>(limits.qualities[0] ?? "standard");
  const [duration, setDuration] = useState(30);
  const ids = useId();
  const working = ["submitting", "queued", "running"].includes(generation.phase);
  const nothingLeft = limits.remaining === 0;

  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (working || nothingLeft) return;
    void generation.submit({ prompt, genre: genre.trim() || null, quality, duration_seconds: duration });
  };

  const { job } = generation;
  return (
    <form className="generate" onSubmit={submit}>
      <label htmlFor={`${ids}-prompt`}>Prompt</label>
      <textarea
        id={`${ids}-prompt`}
        value={prompt}
        onChange={(e) => setPrompt(e.target.value)}
        required
        maxLength={2000}
        rows={3}
      />
      <label htmlFor={`${ids}-genre`}>Genre</label>
      <input id={`${ids}-genre`} value={genre} onChange={(e) => setGenre(e.target.value)} maxLength={40} />
      <label htmlFor={`${ids}-quality`}>Quality</label>
      <select id={`${ids}-quality`} value={quality} onChange={(e) => setQuality(e.target.value as Quality)}>
        {limits.qualities.map((q) => (
          <option key={q} value={q}>
            {QUALITY_NAMES[q]}
          </option>
        ))}
      </select>
      <label htmlFor={`${ids}-duration`}>Length (seconds)</label>
      <input
        id={`${ids}-duration`}
        type="number"
        min={5}
        max={300}
        value={duration}
        onChange={(e) => setDuration(Number(e.target.value))}
      />
      <button type="submit" disabled={working || nothingLeft || prompt.trim() === ""}>
        Generate
      </button>
      {nothingLeft && generation.phase !== "limited" && (
        <p role="status">Nothing left this period: more on the reset.</p>
      )}
      <p aria-live="polite" className="status">
        {STATUS_TEXT[generation.phase] ?? ""}
      </p>
      {job?.status === "failed" && (
        <p className="error" role="alert">
          {JOB_ERRORS[job.error ?? ""] ?? "The generation failed."}
        </p>
      )}
      {job?.status === "succeeded" && job.audio_url && (
        <audio className="player" controls autoPlay src={job.audio_url} aria-label="Your song" />
      )}
      {generation.limitReached && (
        <Paywall resetAt={generation.limitReached.resetAt} next={nextTier(tiers, limits.tier)} onUpgrade={onUpgrade} />
      )}
      <ProblemMessage error={generation.error} />
    </form>
  );
}
