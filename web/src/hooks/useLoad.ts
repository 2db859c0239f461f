import { useCallback, useEffect, useRef, useState } from "react";

export interface Loaded<T> {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  /** Loads again (after a change, or on a retry). */
  reload: () => Promise<T | undefined>;
}

/** Runs `load` when `key` changes (never when `key` is null) and keeps its latest answer. */
export function useLoad<T>(key: string | null, load: () => Promise<T>): Loaded<T> {
  const [data, setData] = useState<T>();
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(key !== null);
  const latest = useRef(load);
  latest.current = load;
  const run = useRef(0);

  const reload = useCallback(async () => {
    const mine = ++run.current;
    setLoading(true);
    try {
      const value = await latest.current();
      if (mine === run.current) {
        setData(value);
        setError(null);
      }
      return value;
    } catch (err) {
      if (mine === run.current) setError(err);
      return undefined;
    } finally {
      if (mine === run.current) setLoading(false);
    }
  }, []);

  useEffect(() => {
    if (key === null) {
      setData(undefined);
      setLoading(false);
      return;
    }
    void reload();
  }, [key, reload]);

  return { data, error, loading, reload };
}
