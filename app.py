"""CNN Lens: the router. Registers the pages, draws the shared sidebar, runs the chosen page."""

import streamlit as st

from ui.shared import HOME, available_lessons, draw_sidebar
from vizlib.serving import configure_process

configure_process()  # once per process: torch threads per call, malloc arenas (see vizlib/serving/process.py)

st.set_page_config(page_title="CNN Lens", page_icon=":material/visibility:", layout="wide")

pages = [st.Page(HOME.path, title=HOME.title, icon=HOME.icon, url_path=HOME.url_path, default=True)]
pages += [st.Page(p.path, title=p.title, icon=p.icon, url_path=p.url_path) for p in available_lessons()]
page = st.navigation(pages)
draw_sidebar()
page.run()
