"""The Streamlit side of CNN Lens that is not a page: the page list, the shared sidebar, session state and the
caches every session shares. It lives outside ``pages/`` so that Streamlit never lists it as a page."""
