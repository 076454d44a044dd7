// Paging through a GraphQL connection (`totalCount`, `pageInfo { hasNextPage endCursor }`,
// `nodes`), newest first: the first page on mount and whenever `deps` change, `more()` appends the
// next one. The screens of invoices and keys share it, so both load and fail the same way.

import { useEffect, useRef, useState } from "./vendor/htm-preact.module.js";
import { gql } from "./api.js";

const PAGE_SIZE = 20;

/** Pages of `data[field]` from `query` (which takes `$first` and `$after`) with `variables`. */
export function useConnectionPages(query, field, variables, deps) {
  const [state, setState] = useState({ nodes: [], total: 0, cursor: null, hasNext: false, loading: true, error: null });
  // A response that arrives after a newer request started is dropped, so a reload (a filter
  // changed) never mixes the old list into the new one.
  const generation = useRef(0);
  const load = async (after) => {
    const mine = ++generation.current;
    setState((s) => ({ ...s, loading: true, error: null }));
    try {
      const page = (await gql(query, { first: PAGE_SIZE, after, ...variables }))[field];
      if (mine !== generation.current) return;
      setState((s) => ({
        nodes: after ? [...s.nodes, ...page.nodes] : page.nodes,
        total: page.totalCount,
        cursor: page.pageInfo.endCursor,
        hasNext: page.pageInfo.hasNextPage,
        loading: false,
        error: null,
      }));
    } catch (error) {
      if (mine === generation.current) setState((s) => ({ ...s, loading: false, error }));
    }
  };
  useEffect(() => {
    load(null);
  }, deps);
  return { ...state, reload: () => load(null), more: () => load(state.cursor) };
}
