import { useCallback, useEffect, useId, useRef, useState, type FormEvent } from "react";
import { ApiError, call, type PoolItem } from "../api/client";
import { useApi, useUser } from "../context";
import { localTime, QUALITY_NAMES } from "../format";
import { ProblemMessage } from "./ProblemMessage";

export type PoolSort = "recent" | "popular" | "quality";

export interface CommunityPoolProps {
  /** The caller is on FREE: items offer a claim. */
  canClaim?: boolean;
  /** Items read per page. */
  pageSize?: number;
  /** Offered to a signed-out visitor instead of play, like and claim. */
  onSignIn?: () => void;
}

const SORTS: Record<PoolSort, string> = { recent: "Newest", popular: "Most played", quality: "Best quality" };

/** The pool: sorted and filtered pages read on as the list scrolls, each item played, liked, claimed. */
export function CommunityPool({ canClaim = false, pageSize = 12, onSignIn }: CommunityPoolProps) {
  const api = useApi();
  const ids = useId();
  const [sort, setSort] = useState<PoolSort>("recent");
  const [genreInput, setGenreInput] = useState("");
  const [genre, setGenre] = useState("");
  const [items, setItems] = useState<PoolItem[]>([]);
  const [cursor, setCursor] = useState<string | null | undefined>(undefined);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [claimsLeft, setClaimsLeft] = useState<number | null>(null);
  const query = useRef(0);

  const load = useCallback(
    async (from: string | null | undefined, fresh: boolean) => {
      const mine = fresh ? ++query.current : query.current;
      setLoading(true);
      setError(null);
      try {
        const page = await call(
          api.GET("/api/community/pool", {
            params: { query: { sort, limit: pageSize, ...(genre ? { genre } : {}), ...(from ? { cursor: from } : {}) } },
          }),
        );
        if (mine !== query.current) return;
        setItems((before) => (fresh ? page.items : [...before, ...page.items]));
        setCursor(page.next_cursor ?? null);
      } catch (err) {
        if (mine === query.current) setError(err);
      } finally {
        if (mine === query.current) setLoading(false);
      }
    },
    [api, sort, genre, pageSize],
  );

  useEffect(() => {
    setItems([]);
    setCursor(undefined);
    void load(undefined, true);
  }, [load]);

  const more = useCallback(() => {
    if (!loading && cursor) void load(cursor, false);
  }, [loading, cursor, load]);

  const sentinel = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const node = sentinel.current;
    if (!node) return;
    const observer = new IntersectionObserver((entries) => entries.some((e) => e.isIntersecting) && more());
    observer.observe(node);
    return () => observer.disconnect();
  }, [more]);

  const filter = (event: FormEvent) => {
    event.preventDefault();
    setGenre(genreInput.trim());
  };

  return (
    <section className="pool" aria-labelledby={`${ids}-heading`}>
      <h2 id={`${ids}-heading`}>Community pool</h2>
      <form className="pool__filters" onSubmit={filter}>
        <label htmlFor={`${ids}-sort`}>Sort by</label>
        <select id={`${ids}-sort`} value={sort} onChange={(e) => setSort(e.target.value as PoolSort)}>
          {Object.entries(SORTS).map(([value, label]) => (
            <option key={value} value={value}>
              {label}
            </option>
          ))}
        </select>
        <label htmlFor={`${ids}-genre`}>Genre</label>
        <input id={`${ids}-genre`} value={genreInput} maxLength={40} onChange={(e) => setGenreInput(e.target.value)} />
        <button type="submit">Filter</button>
      </form>
      {canClaim && claimsLeft !== null && (
        <p role="status">
          {claimsLeft} claim{claimsLeft === 1 ? "" : "s"} left today
        </p>
      )}
      <ProblemMessage error={error} onRetry={() => void load(cursor, items.length === 0)} />
      <ul className="pool__items" aria-busy={loading}>
        {items.map((item) => (
          <PoolEntry key={item.id} item={item} canClaim={canClaim} onClaimed={setClaimsLeft} onSignIn={onSignIn} />
        ))}
      </ul>
      {!loading && items.length === 0 && !error && <p>Nothing in the pool{genre ? ` for ${genre}` : ""} yet.</p>}
      <div ref={sentinel} />
      {loading && <p aria-live="polite">Loading…</p>}
      {cursor && !loading && (
        <button type="button" onClick={more}>
          Load more
        </button>
      )}
      {cursor === null && items.length > 0 && <p>That is everything{genre ? ` for ${genre}` : ""}.</p>}
    </section>
  );
}

interface EntryProps {
  item: PoolItem;
  canClaim: boolean;
  onClaimed: (left: number) => void;
  onSignIn?: () => void;
}

function PoolEntry({ item, canClaim, onClaimed, onSignIn }: EntryProps) {
  const api = useApi();
  const user = useUser();
  const [plays, setPlays] = useState(item.plays);
  const [likes, setLikes] = useState(item.likes);
  const [liked, setLiked] = useState(false);
  const [audio, setAudio] = useState<string | null>(null);
  const [claimed, setClaimed] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const title = item.title ?? "Untitled";
  const path = { params: { path: { id: item.id } } };

  const act = async (action: () => Promise<void>) => {
    setError(null);
    try {
      await action();
    } catch (err) {
      setError(err);
    }
  };
  const play = () =>
    act(async () => {
      const answer = await call(api.POST("/api/community/pool/{id}/play", path));
      setPlays(answer.plays);
      setAudio(answer.audio_url);
    });
  const like = () =>
    act(async () => {
      const answer = await call(
        liked ? api.DELETE("/api/community/pool/like/{id}", path) : api.POST("/api/community/pool/like/{id}", path),
      );
      setLiked(answer.liked);
      setLikes(answer.likes);
    });
  const claim = () =>
    act(async () => {
      try {
        const answer = await call(api.POST("/api/community/pool/claim", { body: { contribution_id: item.id } }));
        setClaimed(true);
        setAudio(answer.audio_url);
        onClaimed(answer.claims_remaining);
      } catch (err) {
        if (err instanceof ApiError && err.code === "daily_claim_limit_reached") onClaimed(0);
        throw err;
      }
    });

  return (
    <li className="pool-item">
      <h3>{title}</h3>
      <p className="pool-item__meta">
        {[item.genre, QUALITY_NAMES[item.quality], item.contributor.username ? `by ${item.contributor.username}` : null]
          .filter(Boolean)
          .join(" · ")}{" "}
        · shared {localTime(item.contributed_at)}
      </p>
      <p>
        {plays} play{plays === 1 ? "" : "s"} · {likes} like{likes === 1 ? "" : "s"}
      </p>
      {user ? (
        <div className="pool-item__actions">
          <button type="button" onClick={() => void play()} aria-label={`Play ${title}`}>
            Play
          </button>
          <button type="button" onClick={() => void like()} aria-pressed={liked} aria-label={`Like ${title}`}>
            {liked ? "Liked" : "Like"}
          </button>
          {canClaim && (
            <button type="button" onClick={() => void claim()} disabled={claimed} aria-label={`Claim ${title}`}>
              {claimed ? "Claimed" : "Claim"}
            </button>
          )}
        </div>
      ) : (
        onSignIn && (
          <button type="button" onClick={onSignIn} aria-label={`Sign in to play ${title}`}>
            Sign in to play
          </button>
        )
      )}
      {audio && <audio controls autoPlay src={audio} aria-label={title} />}
      <ProblemMessage error={error} />
    </li>
  );
}
