import { useCallback, useEffect, useRef, useState } from "react";
import { ApiError, call, type Job, type NewGeneration } from "../api/client";
import { useApi } from "../context";

/** A job as `POST /api/generations` takes it, less the `generation_id` the hook makes. */
export type GenerationRequest = Omit<NewGeneration, "generation_id">;

export type GenerationPhase = "idle" | "submitting" | "queued" | "running" | "succeeded" | "failed" | "limited";

/** The period's allowance is spent (a 429 `daily_limit_reached` or `monthly_limit_reached`). */
export interface LimitReached {
  resetAt: string;
  limit: number | null;
}

export interface Generation {
  phase: GenerationPhase;
  job: Job | null;
  error: unknown;
  limitReached: LimitReached | null;
  /** Submits a job (a fresh `generation_id` each time) and follows it to its end. */
  submit: (request: GenerationRequest) => Promise<void>;
}

export interface GenerationOptions {
  /** Called when the usage changed: a job reserved, succeeded or failed. */
  onUsageChange?: () => void;
  /** The first pause between status reads; each next one is 1.5× longer, up to `maxPollMs`. */
  pollMs?: number;
  maxPollMs?: number;
}

/**
 * Submits a generation job and polls its status with backoff until it succeeds (its `audio_url`)
 * or fails; a spent allowance ends in `limited`, with when it comes back.
 */
export function useGeneration({ onUsageChange, pollMs = 1000, maxPollMs = 8000 }: GenerationOptions = {}): Generation {
  const api = useApi();
  const [phase, setPhase] = useState<GenerationPhase>("idle");
  const [job, setJob] = useState<Job | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [limitReached, setLimitReached] = useState<LimitReached | null>(null);
  const run = useRef(0);
  const changed = useRef(onUsageChange);
  changed.current = onUsageChange;

  useEffect(() => () => void run.current++, []);

  const follow = useCallback(
    async (mine: number, id: string) => {
      let delay = pollMs;
      for (;;) {
        await new Promise((resolve) => setTimeout(resolve, delay));
        if (mine !== run.current) return;
        let now: Job;
        try {
          now = await call(api.GET("/api/generations/{generation_id}", { params: { path: { generation_id: id } } }));
        } catch (err) {
          if (err instanceof ApiError && err.status === 503) {
            delay = Math.min(delay * 1.5, maxPollMs);
            continue;
          }
          throw err;
        }
        if (mine !== run.current) return;
        setJob(now);
        setPhase(now.status);
        if (now.status === "succeeded" || now.status === "failed") {
          changed.current?.();
          return;
        }
        delay = Math.min(delay * 1.5, maxPollMs);
      }
    },
    [api, pollMs, maxPollMs],
  );

  const submit = useCallback(
    async (request: GenerationRequest) => {
      const mine = ++run.current;
      setPhase("submitting");
      setJob(null);
      setError(null);
      setLimitReached(null);
      const generationId = crypto.randomUUID();
      try {
        const queued = await call(api.POST("/api/generations", { body: { generation_id: generationId, ...request } }));
        if (mine !== run.current) return;
        setPhase(queued.status === "queued" ? "queued" : (queued as Job).status);
        changed.current?.();
        await follow(mine, generationId);
      } catch (err) {
        if (mine !== run.current) return;
        const limit = limitOf(err);
        if (limit) {
          setLimitReached(limit);
          setPhase("limited");
          changed.current?.();
        } else {
          setError(err);
          setPhase("failed");
        }
      }
    },
    [api, follow],
  );

  return { phase, job, error, limitReached, submit };
}

function limitOf(err: unknown): LimitReached | null {
  if (!(err instanceof ApiError) || err.status !== 429) return null;
  if (err.code !== "daily_limit_reached" && err.code !== "monthly_limit_reached") return null;
  const resetAt = err.extra<string>("reset_at");
  return resetAt ? { resetAt, limit: err.extra<number>("limit") ?? null } : null;
}
