import { useCallback, useEffect, useId, useState, type FormEvent } from "react";
import { ApiError, call, type Lyrics, type Section } from "../api/client";
import { useApi } from "../context";
import { localTime } from "../format";
import { useLoad } from "../hooks/useLoad";
import { ProblemMessage } from "./ProblemMessage";

type SectionKind = Section["kind"];
const KINDS: Record<SectionKind, string> = {
  intro: "Intro",
  verse: "Verse",
  pre_chorus: "Pre-chorus",
  chorus: "Chorus",
  bridge: "Bridge",
  outro: "Outro",
};

export interface LyricStudioProps {
  /** The draft to open first (e.g. from a link). */
  initialDraft?: string | null;
  /** A draft was opened or made: e.g. to put its id in the URL. */
  onOpen?: (lyricsId: string) => void;
}

/** The caller's drafts: a new one written from a brief, sections edited, saved as the next version. */
export function LyricStudio({ initialDraft = null, onOpen }: LyricStudioProps) {
  const api = useApi();
  const [open, setOpen] = useState<string | null>(initialDraft);
  const drafts = useLoad("drafts", () => call(api.GET("/api/lyrics", { params: { query: { limit: 50 } } })));
  const choose = (id: string) => {
    setOpen(id);
    onOpen?.(id);
  };
  return (
    <div className="studio">
      <div className="studio__side">
        <NewDraft
          onCreated={(draft) => {
            void drafts.reload();
            choose(draft.lyrics_id);
          }}
        />
        <h2>Your drafts</h2>
        <ProblemMessage error={drafts.error} onRetry={() => void drafts.reload()} />
        {drafts.data?.items.length === 0 && <p>No drafts yet: write one from a brief.</p>}
        <ul className="studio__drafts">
          {drafts.data?.items.map((item) => (
            <li key={item.lyrics_id}>
              <button type="button" className="link" aria-current={item.lyrics_id === open} onClick={() => choose(item.lyrics_id)}>
                {item.title}
              </button>{" "}
              <span className="muted">v{item.version}</span>
            </li>
          ))}
        </ul>
      </div>
      {open && <Editor key={open} lyricsId={open} onSaved={() => void drafts.reload()} />}
    </div>
  );
}

function NewDraft({ onCreated }: { onCreated: (draft: Lyrics) => void }) {
  const api = useApi();
  const ids = useId();
  const [theme, setTheme] = useState("");
  const [genre, setGenre] = useState("");
  const [mood, setMood] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const draft = await call(
        api.POST("/api/lyrics", { body: { theme, genre: genre.trim() || null, mood: mood.trim() || null } }),
      );
      setTheme("");
      onCreated(draft);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form className="studio__new" onSubmit={(e) => void submit(e)}>
      <h2>New draft</h2>
      <label htmlFor={`${ids}-theme`}>Brief</label>
      <textarea id={`${ids}-theme`} value={theme} onChange={(e) => setTheme(e.target.value)} required maxLength={500} rows={2} />
      <label htmlFor={`${ids}-genre`}>Genre</label>
      <input id={`${ids}-genre`} value={genre} onChange={(e) => setGenre(e.target.value)} maxLength={40} />
      <label htmlFor={`${ids}-mood`}>Mood</label>
      <input id={`${ids}-mood`} value={mood} onChange={(e) => setMood(e.target.value)} maxLength={40} />
      <button type="submit" disabled={busy || theme.trim() === ""}>
        {busy ? "Writing…" : "Write lyrics"}
      </button>
      <ProblemMessage error={error} />
    </form>
  );
}

/** A draft as read with its ETag (the version an edit replaces). */
interface Read {
  draft: Lyrics;
  version: number;
}

function Editor({ lyricsId, onSaved }: { lyricsId: string; onSaved: () => void }) {
  const api = useApi();
  const ids = useId();
  const [read, setRead] = useState<Read | null>(null);
  const [title, setTitle] = useState("");
  const [sections, setSections] = useState<Section[]>([]);
  const [conflict, setConflict] = useState<Lyrics | null>(null);
  const [saved, setSaved] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  const show = useCallback((draft: Lyrics) => {
    setRead({ draft, version: draft.version });
    setTitle(draft.title);
    setSections(draft.sections);
  }, []);
  const latest = useCallback(
    () => call(api.GET("/api/lyrics/{lyrics_id}", { params: { path: { lyrics_id: lyricsId } } })),
    [api, lyricsId],
  );
  useEffect(() => {
    latest().then(show, setError);
  }, [latest, show]);

  /** Saves this text as the version after `base`; a newer version meanwhile is a conflict. */
  const save = async (base: number) => {
    setBusy(true);
    setError(null);
    setSaved(null);
    try {
      const draft = await call(
        api.PUT("/api/lyrics/{lyrics_id}", {
          params: { path: { lyrics_id: lyricsId }, header: { "If-Match": `"${base}"` } },
          body: { title: title.trim() || null, sections },
        }),
      );
      setConflict(null);
      show(draft);
      setSaved(`Saved as version ${draft.version}.`);
      onSaved();
    } catch (err) {
      if (err instanceof ApiError && err.code === "version_conflict") setConflict(await latest());
      else setError(err);
    } finally {
      setBusy(false);
    }
  };

  if (!read) return <ProblemMessage error={error} />;
  const setLines = (at: number, text: string) =>
    setSections((all) => all.map((s, i) => (i === at ? { ...s, lines: text.split("\n") } : s)));
  const setKind = (at: number, kind: SectionKind) =>
    setSections((all) => all.map((s, i) => (i === at ? { ...s, kind } : s)));
  return (
    <form className="studio__editor" onSubmit={(e) => (e.preventDefault(), void save(read.version))}>
      <h2>
        Editing version {read.version} <span className="muted">of {read.draft.theme}</span>
      </h2>
      <label htmlFor={`${ids}-title`}>Title</label>
      <input id={`${ids}-title`} value={title} onChange={(e) => setTitle(e.target.value)} maxLength={200} />
      {sections.map((section, at) => (
        <fieldset key={at} className="studio__section">
          <legend>
            Section {at + 1}: {KINDS[section.kind]}
          </legend>
          <label htmlFor={`${ids}-kind-${at}`}>Kind</label>
          <select id={`${ids}-kind-${at}`} value={section.kind} onChange={(e) => setKind(at, e.target.value as SectionKind)}>
            {Object.entries(KINDS).map(([value, label]) => (
              <option key={value} value={value}>
                {label}
              </option>
            ))}
          </select>
          <label htmlFor={`${ids}-lines-${at}`}>Lines</label>
          <textarea
            id={`${ids}-lines-${at}`}
            value={section.lines.join("\n")}
            onChange={(e) => setLines(at, e.target.value)}
            rows={Math.max(3, section.lines.length)}
          />
        </fieldset>
      ))}
      <button type="submit" disabled={busy || conflict !== null}>
        Save
      </button>
      {saved && <p role="status">{saved}</p>}
      {conflict && (
        <Conflict
          newer={conflict}
          onReload={() => {
            setConflict(null);
            show(conflict);
          }}
          onOverwrite={() => void save(conflict.version)}
        />
      )}
      <ProblemMessage error={error} />
      <History lyricsId={lyricsId} latest={read.version} />
    </form>
  );
}

function Conflict({ newer, onReload, onOverwrite }: { newer: Lyrics; onReload: () => void; onOverwrite: () => void }) {
  return (
    <section className="conflict" role="alert" aria-labelledby="conflict-heading">
      <h3 id="conflict-heading">Version {newer.version} was saved meanwhile</h3>
      <p>
        It was written {localTime(newer.updated_at)}, after the version you edited. Its text:
      </p>
      <SectionsView sections={newer.sections} />
      <button type="button" onClick={onReload}>
        Load version {newer.version} (drop my changes)
      </button>{" "}
      <button type="button" onClick={onOverwrite}>
        Save mine over it
      </button>
    </section>
  );
}

function SectionsView({ sections }: { sections: Section[] }) {
  return (
    <div className="sections">
      {sections.map((section, at) => (
        <p key={at}>
          <strong>{KINDS[section.kind]}</strong>
          <br />
          {section.lines.map((line, i) => (
            <span key={i}>
              {line}
              <br />
            </span>
          ))}
        </p>
      ))}
    </div>
  );
}

/** Every version of the draft, each readable. */
function History({ lyricsId, latest }: { lyricsId: string; latest: number }) {
  const api = useApi();
  const [shown, setShown] = useState<Lyrics | null>(null);
  const [error, setError] = useState<unknown>(null);
  const versions = Array.from({ length: latest }, (_, i) => latest - i);
  const view = (version: number) =>
    call(api.GET("/api/lyrics/{lyrics_id}", { params: { path: { lyrics_id: lyricsId }, query: { version } } })).then(
      setShown,
      setError,
    );
  return (
    <section className="history" aria-label="Version history">
      <h3>Version history</h3>
      <ul>
        {versions.map((version) => (
          <li key={version}>
            <button type="button" className="link" onClick={() => void view(version)}>
              Version {version}
            </button>
          </li>
        ))}
      </ul>
      {shown && (
        <div aria-live="polite">
          <h4>
            Version {shown.version}: {shown.title}
          </h4>
          <SectionsView sections={shown.sections} />
        </div>
      )}
      <ProblemMessage error={error} />
    </section>
  );
}
