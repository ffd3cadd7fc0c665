"""The reference storefront: the pages a shop starts from, served on the same origin as the APIs it calls."""
