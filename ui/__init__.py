"""The Streamlit-aware layer between the pages and tlcore."""
