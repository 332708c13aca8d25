"""Runtime plane: the LangGraph graph, its typed state, nodes and model providers."""
