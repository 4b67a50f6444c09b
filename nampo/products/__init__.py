"""What a unit computes from a cube: reflectance and masks, composites, indices, land-cover
classes and change metrics, and the store's variables."""
