"""Home: the chosen image, the model's top-5 classes and a guide to the lessons."""

import streamlit as st

from ui.layer_cache import ranking
from ui.shared import available_lessons, current_image, current_image_key, current_model
from vizlib.figures.common import topk_bar
from vizlib.serving import display_jpeg

#: Longest side of the photo as shown (half of the wide layout, twice that for sharp screens).
PICTURE_SIDE = 1024

st.title("CNN Lens")
st.markdown("See what a real, pretrained convolutional network computes on **your** image, layer by layer.")

loaded = current_model()
image = current_image()
prediction = ranking(loaded, current_image_key(), image)  # shared with the CAM page: one forward pass

left, right = st.columns([1, 1])
with left:
    picture = display_jpeg(image, PICTURE_SIDE, key=current_image_key())  # encoded once per image, not per rerun
    st.image(picture, caption=st.session_state.get("image_label"), width="stretch", output_format="JPEG")
with right:
    st.subheader("Top-5 classes")
    st.plotly_chart(topk_bar(prediction.top[:5]), key="top5")
    best, prob = prediction.top[0]
    st.metric("Prediction", best, f"{prob:.1%}", delta_color="off")
(height, width), (need_h, need_w) = image.shape[:2], loaded.input_size
if height < need_h or width < need_w:
    st.info(
        f"Your image is {width}×{height} px, smaller than the {need_w}×{need_h} px the network looks at: it is "
        "enlarged first, so the network sees a blurred picture and its guesses mean less. A larger photo works "
        "better.",
        icon=":material/zoom_in:",
    )
st.caption(
    f"{loaded.spec.title} · {'pretrained' if loaded.pretrained else 'untrained'} · "
    f"{prediction.device.upper()} · forward pass {prediction.seconds * 1000:.0f} ms"
)

st.subheader("A lesson in order")
for number, lesson in enumerate(available_lessons(), start=1):
    st.page_link(lesson.path, label=f"{number}. {lesson.title} — {lesson.blurb}", icon=lesson.icon)
