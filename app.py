"""CNN Lens: the router. Registers the pages, draws the shared sidebar (with the app's own page list), runs
the chosen page.

The page list is drawn by the app (``ui.shared.draw_navigation``), not by Streamlit's navigation menu, which
stays hidden (``client.showSidebarNavigation = false``): on a freshly started server Streamlit's first script
run still treats ``pages/`` as a legacy multipage folder and would paint every file there as a page.
"""

import streamlit as st

from ui.server import slow_config_polling
from ui.shared import app_pages, draw_navigation, draw_sidebar
from vizlib.serving import configure_process

configure_process()  # once per process: torch threads per call, malloc arenas (see vizlib/serving/process.py)
slow_config_polling()  # Streamlit's config files looked at every 5 s, not 5 times a second (see ui/server.py)

st.set_page_config(page_title="CNN Lens", page_icon=":material/visibility:", layout="wide")

pages = app_pages()  # made once per session
page = st.navigation(pages, position="hidden")
draw_navigation(pages)
draw_sidebar()
page.run()
