import { useId, useRef, useState, type FormEvent } from "react";
import { call, type ChatReply } from "../api/client";
import { useApi } from "../context";
import { localTime } from "../format";
import { ProblemMessage } from "./ProblemMessage";

export interface PixelChatProps {
  /** The app's page for a suggestion's API route (`POST /api/generations` → `/generate`); `null`: no link. */
  pathFor?: (route: string) => string | null;
  /** Goes to one of the app's pages (the host's router); default: a plain link. */
  navigate?: (path: string) => void;
}

/** The app pages the suggestions' routes belong to. */
export function defaultPathFor(route: string): string | null {
  const [, path = ""] = route.split(" ");
  if (path === "/api/generations") return "/generate";
  if (path === "/api/tiers/checkout") return "/pricing";
  if (path.startsWith("/api/community/pool")) return "/pool";
  const draft = /^\/api\/lyrics\/([^/]+)$/.exec(path);
  if (draft) return `/lyrics?draft=${encodeURIComponent(draft[1] ?? "")}`;
  return null;
}

interface Turn {
  message: string;
  reply: string;
}

/** A conversation with Pixel: what was said, the reply, suggestions that lead somewhere, and the day's messages left. */
export function PixelChat({ pathFor = defaultPathFor, navigate }: PixelChatProps) {
  const api = useApi();
  const ids = useId();
  const [turns, setTurns] = useState<Turn[]>([]);
  const [draft, setDraft] = useState("");
  const [last, setLast] = useState<ChatReply | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const conversation = useRef<string | null>(null);

  const send = async () => {
    const message = draft.trim();
    if (!message || busy) return;
    setBusy(true);
    setError(null);
    try {
      const answer = await call(
        api.POST("/api/pixel/chat", { body: { message, conversation_id: conversation.current } }),
      );
      conversation.current = answer.conversation_id;
      setTurns((all) => [...all, { message, reply: answer.reply }]);
      setLast(answer);
      setDraft("");
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <section className="pixel" aria-labelledby={`${ids}-heading`}>
      <h2 id={`${ids}-heading`}>Pixel</h2>
      <ol className="pixel__log" aria-live="polite" aria-label="Conversation">
        {turns.map((turn, at) => (
          <li key={at}>
            <p className="pixel__you">
              <span className="muted">You:</span> {turn.message}
            </p>
            <p className="pixel__reply">
              <span className="muted">Pixel:</span> {turn.reply}
            </p>
          </li>
        ))}
      </ol>
      {turns.length === 0 && <p>Ask Pixel for an idea, a lyric, or what to do next.</p>}
      {last && last.suggestions.length > 0 && (
        <ul className="pixel__chips" aria-label="Suggestions">
          {last.suggestions.map((suggestion, at) => {
            const path = suggestion.route ? pathFor(suggestion.route) : null;
            return (
              <li key={at}>
                {path ? (
                  <a
                    href={path}
                    onClick={(e) => {
                      if (!navigate) return;
                      e.preventDefault();
                      navigate(path);
                    }}
                  >
                    {suggestion.text}
                  </a>
                ) : (
                  <span>{suggestion.text}</span>
                )}
              </li>
            );
          })}
        </ul>
      )}
      <form
        className="pixel__form"
        onSubmit={(e: FormEvent) => {
          e.preventDefault();
          void send();
        }}
      >
        <label htmlFor={`${ids}-message`}>Message</label>
        <textarea id={`${ids}-message`} value={draft} onChange={(e) => setDraft(e.target.value)} maxLength={2000} rows={2} />
        <button type="submit" disabled={busy || draft.trim() === ""}>
          {busy ? "Pixel is thinking…" : "Send"}
        </button>
      </form>
      {last && (
        <p className="muted" role="status">
          {last.messages.remaining} of {last.messages.limit} messages left today (more on {localTime(last.messages.reset_at)})
        </p>
      )}
      <ProblemMessage error={error} onRetry={() => void send()} />
    </section>
  );
}
